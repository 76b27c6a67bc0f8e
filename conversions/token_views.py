"""``/tokens/``: a signed-in user makes and revokes their own API tokens (a new token is shown once)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from conversions.models import ApiToken


def token_list(request: HttpRequest) -> HttpResponse:
    new_token = None
    if request.method == "POST":
        _, new_token = ApiToken.issue(request.user, name=request.POST.get("name", "").strip())
    tokens = request.user.api_tokens.all()[:200]
    return render(request, "conversions/tokens.html", {"tokens": tokens, "new_token": new_token})


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # someone else's token: not found
    if token.revoke():
        messages.info(request, f"Token {token.prefix}… revoked; requests with it now answer 401.")
    return redirect("conversions:tokens")
