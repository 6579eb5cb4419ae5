from rest_framework.routers import DefaultRouter


class Router(DefaultRouter):
    """Paths work with and without the trailing slash (`/api/v1/status` and `/api/v1/status/`)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
