"""Views of every kind the integration supports, each making real OpenAI calls (or none)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payi_web import bind_context, get_context, track, track_context

from . import accounts, genai


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no GenAI here")


def context(request: HttpRequest) -> JsonResponse:
    return JsonResponse(get_context().model_dump(mode="json"))


def health(request: HttpRequest) -> JsonResponse:  # under EXCLUDE_PATHS
    return JsonResponse({"text": genai.ask()})


@track(use_case_name="summary")
def summary(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"text": genai.ask()})


# What `handed_on` queued for later, and a weak reference to each request it came from.
handed_on_work: list[tuple[weakref.ref[HttpRequest], Callable[[], str]]] = []


@track(use_case_name="handed_on")
def handed_on(request: HttpRequest) -> HttpResponse:
    genai.ask("now")  # the user and account are resolved here
    handed_on_work.append((weakref.ref(request), bind_context(lambda: genai.ask("later"))))
    return HttpResponse("queued")


@track(use_case_name="twice")
def twice(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"text": [genai.ask("one"), genai.ask("two")]})


@track(use_case_step="outline")
def _outline() -> str:
    return genai.ask("outline")


@track(use_case_name="nested")
def nested(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"text": [_outline(), genai.ask("body")]})


@track(use_case_name="achat")
async def achat(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"text": await genai.aask()})


@track(use_case_name="gathered")
async def gathered(request: HttpRequest) -> JsonResponse:
    # Three calls at once, each the first to need the account: they share one resolution.
    texts = await asyncio.gather(genai.aask("one"), genai.aask("two"), genai.aask("three"))
    return JsonResponse({"text": texts})


@track(use_case_name="cancelled")
async def cancelled_resolution(request: HttpRequest) -> JsonResponse:
    # The first call is cancelled while its account resolver runs (see accounts.gated_account);
    # the second, waiting for that resolution meanwhile, resolves it in its place.
    gate = request.gate = accounts.Gate()  # type: ignore[attr-defined]
    first = asyncio.ensure_future(genai.aask("first"))
    await gate.entered.wait()
    second = asyncio.ensure_future(genai.aask("second"))
    for _ in range(20):  # let the second call reach the resolution under way
        await asyncio.sleep(0)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    gate.open.set()
    return JsonResponse({"text": await second, "first_cancelled": first.cancelled()})


@track(use_case_name="blocking")
async def blocking_in_async(request: HttpRequest) -> JsonResponse:
    # A sync client called on the event loop: the user is resolved off the loop.
    return JsonResponse({"text": genai.ask(), "user_id": get_context().user_id})


@track(use_case_name="sync-in-async")
async def sync_call_in_async(request: HttpRequest) -> JsonResponse:
    # A sync client through sync_to_async (Django's thread for sync code), the request's first
    # call: its async account resolver runs from that thread. What the view's context holds
    # before and after: payi-web's resolution adds nothing to it.
    before = set(contextvars.copy_context())
    text = await sync_to_async(genai.ask)()
    added = sorted(var.name for var in set(contextvars.copy_context()) - before)
    return JsonResponse({"text": text, "added": added})


@track(use_case_name="loaded-then-thread")
async def loaded_then_thread(request: HttpRequest) -> JsonResponse:
    # The view loads the user the async way, then calls a sync client in a worker thread.
    user = await accounts.aload_user(request)
    text = await sync_to_async(genai.ask, thread_sensitive=False)()
    return JsonResponse({"text": text, "user_id": str(user.pk)})


# A view's own thread pool, for work it fans out.
pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="view-pool")


@track(use_case_name="pooled")
async def pooled_in_async(request: HttpRequest) -> JsonResponse:
    # Bound on the event loop, awaited from the loop: the usual way for an async view.
    loop = asyncio.get_running_loop()
    return JsonResponse({"text": await loop.run_in_executor(pool, bind_context(genai.ask))})


@track(use_case_name="pooled")
def pooled_in_sync(request: HttpRequest) -> JsonResponse:
    # Under ASGI, this runs in the request's thread for sync code, which waits for the pool.
    return JsonResponse({"text": pool.submit(bind_context(genai.ask)).result()})


@track(use_case_name="pooled")
async def pooled_blocking_the_loop(request: HttpRequest) -> JsonResponse:
    # A mistake, but one tracking must survive: the event loop blocks on the pool.
    return JsonResponse({"text": pool.submit(bind_context(genai.ask)).result()})


@track(use_case_name="stream")
def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(genai.stream(), content_type="text/plain")


@track(use_case_name="astream")
async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(genai.astream(), content_type="text/plain")


@track(use_case_step="answer")
def _tracked_answer(prompt: str) -> Any:
    """A tracked generator: its own scope (a step) at every step of the body."""
    yield f"{get_context().use_case_step}:"
    yield from genai.stream(prompt)


@track(use_case_step="answer")
async def _atracked_answer(prompt: str) -> Any:
    yield f"{get_context().use_case_step}:"
    async for text in genai.astream(prompt):
        yield text


@track(use_case_name="tracked-body")
def tracked_body_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_tracked_answer("stream this"), content_type="text/plain")


def untracked_view_tracked_body(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_tracked_answer("stream this"), content_type="text/plain")


@track(use_case_name="atracked-body")
async def atracked_body_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_atracked_answer("stream this"), content_type="text/plain")


# Set by a test to hold every body mid-scope until all of its concurrent requests are (sync and async).
drafts_barrier: Any = None


def _drafts() -> Any:
    """A body that enters a scope around a yield and makes its GenAI call after it."""
    with track_context(use_case_step="drafting"):
        yield f"{get_context().use_case_step}\n"
        if drafts_barrier is not None:
            drafts_barrier.wait()
        text = "".join(genai.stream("draft this"))
        yield f"{get_context().use_case_step}:{text}\n"
    yield f"{get_context().use_case_step}\n"


async def _adrafts() -> Any:
    with track_context(use_case_step="drafting"):
        yield f"{get_context().use_case_step}\n"
        if drafts_barrier is not None:
            await drafts_barrier.wait()
        text = "".join([part async for part in genai.astream("draft this")])
        yield f"{get_context().use_case_step}:{text}\n"
    yield f"{get_context().use_case_step}\n"


def _closed_early() -> Any:
    """A body the client leaves after its first chunk: its `finally` still makes a call."""
    with track_context(use_case_step="drafting"):
        try:
            yield "first\n"
            yield "never read\n"
        finally:
            genai.ask("save the partial draft")


@track(use_case_name="closed-early")
def closed_early(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_closed_early(), content_type="text/plain")


async def _aclosed_early() -> Any:
    """`_closed_early` for an async body, whose scope is the view's: the client leaves after the
    first chunk and Django drops the response; its `finally` still makes a call."""
    try:
        yield "first\n"
        yield "never read\n"
    finally:
        await genai.aask("save the partial draft")


@track(use_case_name="aclosed-early", use_case_step="drafting")
async def aclosed_early(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_aclosed_early(), content_type="text/plain")


@track(use_case_name="aclosed-early")
async def atracked_closed_early(request: HttpRequest) -> StreamingHttpResponse:
    # The body a tracked generator: it keeps its own scope, and Django gets it as is.
    body = track(use_case_step="drafting")(_aclosed_early)()
    return StreamingHttpResponse(body, content_type="text/plain")


@track(use_case_name="drafts")
def drafts(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_drafts(), content_type="text/plain")


@track(use_case_name="adrafts")
async def adrafts(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_adrafts(), content_type="text/plain")


def untracked_stream(request: HttpRequest) -> StreamingHttpResponse:
    # No @track: the chunks still run in the request's scope (user, account, CONTEXT).
    return StreamingHttpResponse(genai.stream(), content_type="text/plain")


@track(use_case_name="cbv")
class TrackedView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"text": genai.ask()})


@track(use_case_name="acbv")
class AsyncTrackedView(View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"text": await genai.aask()})


@method_decorator(track(use_case_name="md"), name="dispatch")
class MethodDecoratedView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"text": genai.ask()})


@method_decorator(track(use_case_name="amd"), name="dispatch")
class AsyncMethodDecoratedView(View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"text": await genai.aask()})


class DrfChat(APIView):
    @track(use_case_name="drf")
    def post(self, request: Request) -> Response:
        return Response({"text": genai.ask(), "user": request.user.pk})


@track(use_case_name="drf-class")
class DrfClassChat(APIView):
    def get(self, request: Request) -> Response:
        return Response({"text": genai.ask()})


class ChatViewSet(viewsets.ViewSet):
    @track(use_case_name="drf-viewset")
    def list(self, request: Request) -> Response:
        return Response({"text": genai.ask()})

    @track(use_case_name="drf-viewset", use_case_step="stream")
    def retrieve(self, request: Request, pk: Any = None) -> StreamingHttpResponse:
        return StreamingHttpResponse(genai.stream(), content_type="text/plain")


@track(use_case_name="drf-function")
@api_view(["POST"])
def drf_function(request: Request) -> Response:
    return Response({"text": genai.ask()})


def user_changed_in_view(request: HttpRequest) -> JsonResponse:
    """Reads, replaces or logs out `request.user` (per `?do=`) before its GenAI call."""
    from django.contrib.auth import get_user_model, login, logout

    action = request.GET.get("do", "nothing")
    if action == "read":
        assert request.user.is_authenticated
    elif action == "switch":
        login(request, get_user_model().objects.get(username=request.GET["to"]))
    elif action == "logout":
        logout(request)
    genai.ask()
    return JsonResponse({"user_id": get_context().user_id, "current": request.user.pk})
