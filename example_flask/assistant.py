"""The demo's pages, in one blueprint. payi-web attributes each GenAI call; the views only name the use case.

- `summarize`: `@track(use_case_name="document_summary")`, one chat completion;
- `chat`: `@track(use_case_name="chat")`, the answer streamed to the browser as the model writes it;
- `reply`: `@track(use_case_name="support_reply")`, whose helpers add a use case step and request
  properties with `track_context()`.

Add `?format=json` (summarize, reply) or `?format=text` (chat) for curl.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, stream_with_context
from flask_login import login_required
from markupsafe import Markup, escape

from examples_shared import genai
from payi_web import get_context, track, track_context

bp = Blueprint("assistant", __name__)

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


def _page(template: str, **context: Any) -> Any:
    """The page, with the Pay-i context of the calls it made; JSON for `?format=json`."""
    calls = genai.calls_of_this_page()
    if request.args.get("format") == "json":
        backend = genai.LABELS[current_app.config["DEMO_BACKEND"]]
        return jsonify(backend=backend, **context, payi_calls=calls)
    return render_template(template, **context, calls=calls)


@bp.get("/")
@login_required
def home() -> Any:
    return render_template("home.html", ctx=get_context())  # what this request's GenAI calls carry


@bp.route("/summarize", methods=["GET", "POST"])
@login_required
@track(use_case_name="document_summary")
def summarize() -> Any:
    if request.method != "POST":
        return render_template("summarize.html", document=SAMPLE_DOCUMENT)
    document = request.form.get("document", "").strip() or SAMPLE_DOCUMENT
    summary = genai.ask("Summarize the document in two sentences.", document)
    return _page("summarize.html", document=document, summary=summary)


# --- the chat: a streamed answer ---------------------------------------------------------------

ANSWER_SLOT = "<!--answer-->"
PAYI_SLOT = "<!--payi-->"


@bp.get("/chat")
@login_required
@track(use_case_name="chat")
def chat() -> Any:
    message = request.args.get("message", "").strip()
    if not message:
        return render_template("chat.html")
    pieces = genai.ask_streamed("You are a helpful assistant. Answer briefly.", message)
    # The body is produced after this view returned, while the server sends it: payi-web keeps
    # the view's scope (user, account, use case) current at every step of it.
    if request.args.get("format") == "text":
        return Response(_text_page(pieces), mimetype="text/plain")
    page = render_template(
        "chat.html", message=message, answer_slot=Markup(ANSWER_SLOT), payi_slot=Markup(PAYI_SLOT)
    )
    # stream_with_context: the last step renders a template, which needs the request context.
    return Response(stream_with_context(_html_page(page, pieces)), mimetype="text/html")


def _html_page(page: str, pieces: Iterator[str]) -> Iterator[str]:
    head, rest = page.split(ANSWER_SLOT, 1)
    middle, tail = rest.split(PAYI_SLOT, 1)
    yield head
    for piece in pieces:
        yield str(escape(piece))
    yield middle
    yield render_template("_payi.html", calls=genai.calls_of_this_page())
    yield tail


def _text_page(pieces: Iterator[str]) -> Iterator[str]:
    yield from pieces
    yield "\n\n" + genai.as_text(genai.calls_of_this_page())


# --- helpers that add steps --------------------------------------------------------------------


def outline(ticket: str, tone: str) -> str:
    """A nested helper: one step of the view's use case, with request properties of its own."""
    properties = {"tone": tone, "ticket_words": str(len(ticket.split()))}
    with track_context(use_case_step="outline", request_properties=properties):
        return genai.ask("List the points a reply to this support ticket must address.", ticket)


def draft(ticket: str, points: str, tone: str) -> str:
    with track_context(use_case_step="draft", request_properties={"tone": tone}):
        return genai.ask(f"Write a {tone} reply to the ticket that covers: {points}", ticket)


@bp.route("/reply", methods=["GET", "POST"])
@login_required
@track(use_case_name="support_reply")
def reply() -> Any:
    if request.method != "POST":
        return render_template("reply.html", ticket=SAMPLE_TICKET, tones=TONES, tone=TONES[0])
    ticket = request.form.get("ticket", "").strip() or SAMPLE_TICKET
    tone = request.form.get("tone", "")
    tone = tone if tone in TONES else TONES[0]
    points = outline(ticket, tone)
    answer = draft(ticket, points, tone)
    return _page("reply.html", ticket=ticket, tones=TONES, tone=tone, points=points, reply=answer)
