"""API routes of the simulations app."""

urlpatterns: list = []
