from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("api/chats", views.ChatViewSet, basename="chats")

urlpatterns = [
    path("plain/", views.plain),
    path("user-changed/", views.user_changed_in_view),
    path("context/", views.context),
    path("health/genai/", views.health),
    path("summary/", views.summary),
    path("twice/", views.twice),
    path("handed-on/", views.handed_on),
    path("nested/", views.nested),
    path("achat/", views.achat),
    path("gathered/", views.gathered),
    path("cancelled/", views.cancelled_resolution),
    path("blocking/", views.blocking_in_async),
    path("sync-in-async/", views.sync_call_in_async),
    path("loaded-then-thread/", views.loaded_then_thread),
    path("pooled/", views.pooled_in_async),
    path("pooled-sync/", views.pooled_in_sync),
    path("pooled-blocking/", views.pooled_blocking_the_loop),
    path("stream/", views.sync_stream),
    path("astream/", views.async_stream),
    path("untracked-stream/", views.untracked_stream),
    path("drafts/", views.drafts),
    path("closed-early/", views.closed_early),
    path("aclosed-early/", views.aclosed_early),
    path("atracked-closed-early/", views.atracked_closed_early),
    path("adrafts/", views.adrafts),
    path("tracked-body/", views.tracked_body_stream),
    path("untracked-view-tracked-body/", views.untracked_view_tracked_body),
    path("atracked-body/", views.atracked_body_stream),
    path("cbv/", views.TrackedView.as_view()),
    path("acbv/", views.AsyncTrackedView.as_view()),
    path("md/", views.MethodDecoratedView.as_view()),
    path("amd/", views.AsyncMethodDecoratedView.as_view()),
    path("api/chat/", views.DrfChat.as_view()),
    path("api/class-chat/", views.DrfClassChat.as_view()),
    path("api/function/", views.drf_function),
    path("payi/", include("payi_web.django.urls")),
    *router.urls,
]
