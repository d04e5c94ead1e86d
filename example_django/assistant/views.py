"""The demo's pages. Each GenAI call is attributed by payi-web; the views only say what the use case is.

- `summarize`: a function view, `@track(use_case_name="document_summary")`, one chat completion;
- `chat`: `@track(use_case_name="chat")`, the answer streamed to the browser as the model writes it;
- `ReplyView`: a class-based view, `@track(use_case_name="support_reply")`, whose helpers add a
  use case step and request properties with `track_context()`;
- `usage`: the local ledger's usage page, for every logged-in user of the demo.

Add `?format=json` (summarize, reply) or `?format=text` (chat) for curl.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views import View
from django.views.decorators.cache import never_cache

from examples_shared import genai
from payi_web import get_context, track, track_context
from payi_web.ledger import render_usage_page

from .demo_users import DEMO_USERS

SAMPLE_DOCUMENT = (
    "Quarterly review, platform team. Checkout latency fell from 420 ms to 180 ms after the "
    "cache rollout. Two incidents: a certificate expiry on the billing API (38 minutes) and a "
    "noisy-neighbour slowdown in the search cluster. GenAI spend grew 30 percent, mostly from "
    "document summaries for the acme account. Next quarter: per-account GenAI budgets, "
    "certificate monitoring, and moving search to dedicated nodes."
)
SAMPLE_TICKET = (
    "Hello, since Monday our exports to CSV time out after 30 seconds and the finance team "
    "cannot close the month. We are on the business plan. Can you raise the limit or tell us "
    "a workaround? Thanks, Dana"
)
TONES = ["friendly", "formal", "brief"]


def login_context() -> dict[str, Any]:
    return {"demo_users": DEMO_USERS}


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """The page, with the Pay-i context of the calls it made; JSON for `?format=json`."""
    calls = genai.calls_of_this_page()
    if request.GET.get("format") == "json":
        return JsonResponse({"backend": genai.LABELS[settings.DEMO_BACKEND], **context, "payi_calls": calls})
    return render(request, template, {**context, "calls": calls})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    ctx = get_context()  # the request's context: what its GenAI calls will carry
    return render(request, "assistant/home.html", {"ctx": ctx})


@login_required
@track(use_case_name="document_summary")
def summarize(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "assistant/summarize.html", {"document": SAMPLE_DOCUMENT})
    document = request.POST.get("document", "").strip() or SAMPLE_DOCUMENT
    summary = genai.ask("Summarize the document in two sentences.", document)
    return _page(request, "assistant/summarize.html", {"document": document, "summary": summary})


# --- the chat: a streamed answer ---------------------------------------------------------------

ANSWER_SLOT = "<!--answer-->"
PAYI_SLOT = "<!--payi-->"


@login_required
@track(use_case_name="chat")
def chat(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    message = request.GET.get("message", "").strip()
    if not message:
        return render(request, "assistant/chat.html", {})
    pieces = genai.ask_streamed("You are a helpful assistant. Answer briefly.", message)
    if request.GET.get("format") == "text":
        body, content_type = _text_page(pieces), "text/plain; charset=utf-8"
    else:
        slots = {"answer_slot": mark_safe(ANSWER_SLOT), "payi_slot": mark_safe(PAYI_SLOT)}
        page = render_to_string("assistant/chat.html", {"message": message, **slots}, request)
        body, content_type = _html_page(page, pieces), "text/html; charset=utf-8"
    # The body is produced after this view returned, while the server sends it: payi-web keeps
    # the view's scope (user, account, use case) current at every step of it.
    return StreamingHttpResponse(_for_the_server(request, body), content_type=content_type)


def _html_page(page: str, pieces: Iterator[str]) -> Iterator[str]:
    head, rest = page.split(ANSWER_SLOT, 1)
    middle, tail = rest.split(PAYI_SLOT, 1)
    yield head
    for piece in pieces:
        yield escape(piece)
    yield middle
    yield render_to_string("assistant/_payi.html", {"calls": genai.calls_of_this_page()})
    yield tail


def _text_page(pieces: Iterator[str]) -> Iterator[str]:
    yield from pieces
    yield "\n\n" + genai.as_text(genai.calls_of_this_page())


def _for_the_server(request: HttpRequest, body: Iterator[str]) -> Iterator[str] | AsyncIterator[str]:
    """Under ASGI, Django would read a sync iterator whole before sending it: give it an async one."""
    return _in_worker_threads(body) if isinstance(request, ASGIRequest) else body


async def _in_worker_threads(body: Iterator[str]) -> AsyncIterator[str]:
    # Each step of the (blocking) sync iterator runs in a worker thread, with this context.
    step = sync_to_async(next, thread_sensitive=False)
    end = object()
    try:
        while (chunk := await step(body, end)) is not end:
            yield chunk  # type: ignore[misc]
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=False)()


# --- a class-based view, and helpers that add steps --------------------------------------------


def outline(ticket: str, tone: str) -> str:
    """A nested helper: one step of the view's use case, with request properties of its own."""
    properties = {"tone": tone, "ticket_words": str(len(ticket.split()))}
    with track_context(use_case_step="outline", request_properties=properties):
        return genai.ask("List the points a reply to this support ticket must address.", ticket)


def draft(ticket: str, points: str, tone: str) -> str:
    with track_context(use_case_step="draft", request_properties={"tone": tone}):
        return genai.ask(f"Write a {tone} reply to the ticket that covers: {points}", ticket)


@track(use_case_name="support_reply")  # on the class: its dispatch() is tracked
class ReplyView(LoginRequiredMixin, View):
    template_name = "assistant/reply.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(
            request, self.template_name, {"ticket": SAMPLE_TICKET, "tones": TONES, "tone": TONES[0]}
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        ticket = request.POST.get("ticket", "").strip() or SAMPLE_TICKET
        tone = request.POST.get("tone", "")
        tone = tone if tone in TONES else TONES[0]
        points = outline(ticket, tone)
        reply = draft(ticket, points, tone)
        context = {"ticket": ticket, "tones": TONES, "tone": tone, "points": points, "reply": reply}
        return _page(request, self.template_name, context)


# --- the usage page ----------------------------------------------------------------------------


@login_required
@never_cache
def usage(request: HttpRequest) -> HttpResponse:
    """The local ledger by account, user and use case.

    payi-web's own page (`include("payi_web.django.urls")`) is for staff only; in this demo
    every logged-in user may see every account's usage, so it renders the page itself.
    """
    title = f"Pay-i usage: payi-web Django demo ({genai.LABELS[settings.DEMO_BACKEND]})"
    page = render_usage_page(since=request.GET.get("since") or None, title=title)
    back = '<p><a href="/">&larr; back to the demo</a></p>'
    return HttpResponse(page.replace("<body>\n", f"<body>\n{back}\n", 1))
