"""The staff page: today's at-risk members, a member's timeline, reports (``/staff``)."""

from api.page.routes import router

__all__ = ["router"]
