"""`/login/`, `/health/` and `/chat/<plan>/`: async views under ASGI, sync views under WSGI.

A chat view requires a logged-in user (it loads it, as a real view would, payi-web on or off),
makes the calls of its plan (see `bench/load/plans.py`) and answers with their text; a plan
ending in `s` streams its last call in the response body, after the view has returned.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from bench.load import genai
from bench.load.plans import ASYNC_PLANS, SYNC_PLANS, use_case

from .resolvers import aload_user

# The view's own thread pool, for work it fans out (here: one GenAI call per request at most).
pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="load-view-pool")


@csrf_exempt
def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return HttpResponse("bad credentials", status=403)
    login(request, user)
    return JsonResponse({"user_id": str(user.pk), "account": user.last_name})


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def _async_view(plan: str) -> Any:
    @genai.track(use_case_name=use_case(plan))
    async def chat(request: HttpRequest) -> HttpResponse:
        user = await aload_user(request)
        if not user.is_authenticated:
            return HttpResponse("log in first", status=401)
        request_id = request.headers["X-Request-Id"]
        answers: list[str] = []
        loop = asyncio.get_running_loop()
        for kind in plan:
            if kind == "a":
                answers.append(await genai.aask(request_id, kind))
            elif kind == "y":  # a sync client, in a worker thread: sync_to_async carries the context
                answers.append(await sync_to_async(genai.ask, thread_sensitive=False)(request_id, kind))
            elif kind == "t":  # run_in_executor does not carry it: bind_context does
                answers.append(await loop.run_in_executor(pool, genai.bound_ask(request_id, kind)))
        if plan.endswith("s"):
            return StreamingHttpResponse(genai.astream(request_id, answers), content_type="text/plain")
        return HttpResponse("\n".join(answers), content_type="text/plain")

    return chat


def _sync_view(plan: str) -> Any:
    @genai.track(use_case_name=use_case(plan))
    def chat(request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return HttpResponse("log in first", status=401)
        request_id = request.headers["X-Request-Id"]
        answers: list[str] = []
        for kind in plan:
            if kind == "y":
                answers.append(genai.ask(request_id, kind))
            elif kind == "t":
                answers.append(pool.submit(genai.bound_ask(request_id, kind)).result())
        if plan.endswith("s"):
            return StreamingHttpResponse(genai.stream(request_id, answers), content_type="text/plain")
        return HttpResponse("\n".join(answers), content_type="text/plain")

    return chat


def chat_views(asynchronous: bool) -> dict[str, Any]:
    if asynchronous:
        return {plan: _async_view(plan) for plan in ASYNC_PLANS}
    return {plan: _sync_view(plan) for plan in SYNC_PLANS}
