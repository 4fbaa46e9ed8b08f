"""LWA token endpoint, consent page and the gateway's token check."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import trio

from marketsync.plugins.amazon.sandbox.gateway import DENIED_MESSAGE

from .conftest import APPLICATION_ID, CLIENT_ID, CLIENT_SECRET, EU, NA, REDIRECT_URI, REFRESH

TOKEN = "/auth/o2/token"
PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"


def refresh_form(**changes: str) -> dict[str, str]:
    form = {"grant_type": "refresh_token", "refresh_token": REFRESH[NA],
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    form.update(changes)
    return {k: v for k, v in form.items() if v}


async def test_refresh_grant_gives_an_hour_long_access_token(anon):
    """A valid refresh token yields a bearer access token good for 3600 s."""
    response = await anon.post(TOKEN, data=refresh_form())
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("Atza|")
    answer = await anon.get(PARTICIPATIONS, headers={"x-amz-access-token": body["access_token"]})
    assert answer.status_code == 200


async def test_wrong_secret_is_invalid_client(anon):
    response = await anon.post(TOKEN, data=refresh_form(client_secret="nope"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_unknown_client_is_invalid_client(anon):
    response = await anon.post(TOKEN, data=refresh_form(client_id="amzn1.application-oa2-client.other"))
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed"}


async def test_unknown_refresh_token_is_invalid_grant(anon):
    response = await anon.post(TOKEN, data=refresh_form(refresh_token="Atzr|made-up"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_unsupported_grant_type(anon):
    response = await anon.post(TOKEN, data=refresh_form(grant_type="password"))
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_missing_parameter_is_invalid_request(anon):
    response = await anon.post(TOKEN, data=refresh_form(refresh_token=""))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request" and "refresh_token" in body["error_description"]


async def test_json_body_is_invalid_request(anon):
    """LWA wants a form; a JSON body is refused rather than half-understood."""
    response = await anon.post(TOKEN, json=refresh_form())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_revoked_refresh_token_is_invalid_grant(anon):
    revoked = await anon.post("/_sandbox/tokens/revoke", json={"sellerId": NA})
    assert revoked.json() == {"revoked": 1}
    response = await anon.post(TOKEN, data=refresh_form())
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_access_token_expires_after_an_hour(anon, autojump_clock):
    """The token works at 59 minutes and is refused (403 Unauthorized) after 60."""
    token = (await anon.post(TOKEN, data=refresh_form())).json()["access_token"]
    headers = {"x-amz-access-token": token}
    await trio.sleep(3540)
    assert (await anon.get(PARTICIPATIONS, headers=headers)).status_code == 200
    await trio.sleep(61)
    response = await anon.get(PARTICIPATIONS, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"errors": [{"code": "Unauthorized", "message": DENIED_MESSAGE}]}
    assert "x-amzn-RequestId" in response.headers


async def test_missing_and_garbage_tokens_are_denied(anon):
    for headers in ({}, {"x-amz-access-token": "Atza|forged"}, {"x-amz-access-token": REFRESH[NA]}):
        response = await anon.get(PARTICIPATIONS, headers=headers)
        assert response.status_code == 403
        assert response.json()["errors"][0]["code"] == "Unauthorized"


async def test_sigv4_authorization_header_is_ignored(client):
    response = await client.get(PARTICIPATIONS, headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20261102/us-east-1/execute-api/aws4_request, Signature=00",
        "x-amz-date": "20261102T120000Z"})
    assert response.status_code == 200


async def test_early_expiry_fault_shortens_new_tokens(anon, autojump_clock):
    await anon.post("/_sandbox/faults", json={"tokenLifetime": 60})
    token = (await anon.post(TOKEN, data=refresh_form())).json()["access_token"]
    await trio.sleep(61)
    assert (await anon.get(PARTICIPATIONS, headers={"x-amz-access-token": token})).status_code == 403


async def test_expire_tokens_now(anon):
    token = (await anon.post(TOKEN, data=refresh_form())).json()["access_token"]
    assert (await anon.post("/_sandbox/tokens/expire")).json()["expired"] >= 1
    assert (await anon.get(PARTICIPATIONS, headers={"x-amz-access-token": token})).status_code == 403


async def consent(anon, **params: str):
    query = {"application_id": APPLICATION_ID, "state": "s-123", "redirect_uri": REDIRECT_URI, "version": "beta"}
    query.update(params)
    return await anon.get("/apps/authorize/consent", params={k: v for k, v in query.items() if v})


async def test_consent_redirects_with_code_state_and_seller(anon):
    response = await consent(anon)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"] and query["selling_partner_id"] == [EU]
    code = query["spapi_oauth_code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    exchanged = await anon.post(TOKEN, data=form)
    assert exchanged.status_code == 200
    body = exchanged.json()
    assert body["refresh_token"].startswith("Atzr|") and body["access_token"].startswith("Atza|")
    again = await anon.post(TOKEN, data={**form, "grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert again.status_code == 200
    replay = await anon.post(TOKEN, data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


async def test_consent_code_expires_after_five_minutes(anon, autojump_clock):
    response = await consent(anon)
    code = parse_qs(urlsplit(response.headers["location"]).query)["spapi_oauth_code"][0]
    await trio.sleep(timedelta(minutes=5, seconds=1).total_seconds())
    exchanged = await anon.post(TOKEN, data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID,
                                             "client_secret": CLIENT_SECRET})
    assert exchanged.status_code == 400 and exchanged.json()["error"] == "invalid_grant"


async def test_code_needs_the_same_redirect_uri(anon):
    response = await consent(anon)
    code = parse_qs(urlsplit(response.headers["location"]).query)["spapi_oauth_code"][0]
    exchanged = await anon.post(TOKEN, data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": "http://evil.example/cb", "client_id": CLIENT_ID,
                                             "client_secret": CLIENT_SECRET})
    assert exchanged.status_code == 400 and exchanged.json()["error"] == "invalid_grant"


async def test_consent_refuses_unknown_app_unregistered_redirect_and_missing_state(anon):
    assert (await consent(anon, application_id="amzn1.sellerapps.app.other")).status_code == 400
    assert (await consent(anon, redirect_uri="http://evil.example/cb")).status_code == 400
    assert (await consent(anon, state="")).status_code == 400
