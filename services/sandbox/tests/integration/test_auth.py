from __future__ import annotations

import httpx

DOT = "2847193"


def test_qcmobile_without_a_webkey_is_404_must_provide_webkey(http: httpx.Client) -> None:
    for path in (f"/qc/services/carriers/{DOT}", f"/qc/services/carriers/{DOT}/basics"):
        response = http.get(path)
        assert response.status_code == 404
        assert response.json() == {"content": "Must provide Webkey"}
    assert http.get(f"/qc/services/carriers/{DOT}", params={"webkey": "sandbox-webkey"}).status_code == 404


def test_qcmobile_with_a_wrong_webkey_is_404_webkey_not_found(http: httpx.Client) -> None:
    response = http.get(f"/qc/services/carriers/{DOT}/basics", params={"webKey": "not-the-key"})
    assert response.status_code == 404
    body = response.json()
    assert body["content"] == "Webkey not found"
    assert body["retrievalDate"].endswith("+0000")
    assert set(body["_links"]) == {"self", "searchByName", "lookupBydotNumber"}


def test_qcmobile_ignores_auth_headers(http: httpx.Client) -> None:
    response = http.get(f"/qc/services/carriers/{DOT}", headers={"Authorization": "Bearer sandbox-webkey"})
    assert response.status_code == 404


def test_socrata_serves_no_token_and_the_right_token_and_refuses_another(http: httpx.Client) -> None:
    params = {"dot_number": DOT, "$order": ":id"}
    assert http.get("/resource/8mt8-2mdr.json", params=params).status_code == 200
    ok = http.get("/resource/8mt8-2mdr.json", params=params, headers={"X-App-Token": "sandbox-app-token"})
    assert ok.status_code == 200
    assert http.get(
        "/resource/8mt8-2mdr.json", params={**params, "$$app_token": "sandbox-app-token"}
    ).is_success
    for refused in (
        http.get("/resource/8mt8-2mdr.json", params=params, headers={"X-App-Token": "wrong"}),
        http.get("/resource/8mt8-2mdr.json", params={**params, "$$app_token": "wrong"}),
    ):
        assert refused.status_code == 403
        assert refused.json()["code"] == "permission_denied"
        assert refused.headers["X-Socrata-RequestId"]


def test_saferweb_needs_its_key_and_refuses_a_lapsed_one(http: httpx.Client) -> None:
    path = f"/v2/usdot/snapshot/{DOT}"
    assert http.get(path).status_code == 401
    wrong = http.get(path, headers={"x-api-key": "wrong"})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "Unauthorized"})
    lapsed = http.get(path, headers={"x-api-key": "lapsed-key-0001"})
    assert lapsed.status_code == 403
    assert http.get(path, headers={"X-API-KEY": "sandbox-api-key"}).status_code == 200
