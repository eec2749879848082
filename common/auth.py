"""API authentication: DRF's token scheme, with a clear answer to the scheme people try first.

Integrators used to OAuth send `Authorization: Bearer KEY`. DRF's TokenAuthentication ignores
a header whose scheme is not its keyword, so the request reached the permission check as
anonymous and answered "Authentication credentials were not provided." — which reads as if
the header had not arrived. Here a Bearer header is a 401 that says what to send instead.
"""

from rest_framework import authentication, exceptions

BEARER_MESSAGE = "Use 'Authorization: Token <key>' (not Bearer)."


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token KEY` (DRF's authtoken); `Bearer ...` is a 401 naming the fix."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() == b"bearer":
            raise exceptions.AuthenticationFailed(BEARER_MESSAGE)
        return super().authenticate(request)
