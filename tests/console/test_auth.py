"""Accounts and sessions as the web sees them: cookies flags, throttled guessing, a disabled
account or a changed password ending open sessions at once, a role change applied at the next
request, no open redirect, and clear pages for an expired session."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import PASSWORD, SECRET, Site, csrf_of, login
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from engine.console import accounts
from engine.console.auth import SESSION_SECONDS, Sessions, Throttle
from engine.store import audit


def test_the_session_cookie_is_httponly_samesite_and_signed(site: Site) -> None:
    with site.client() as client:
        response = login(client, site.names["auditor"])
        assert response.status_code == 303
        cookie = next(
            v
            for k, v in response.headers.multi_items()
            if k == "set-cookie" and v.startswith("care_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        value = client.cookies["care_session"]
        forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
        client.cookies.set("care_session", forged)
        assert client.get("/playbooks").status_code == 303  # back to the login page


def test_guessing_a_password_is_throttled(site: Site) -> None:
    accounts.add(site.store, "guessed", "editor", PASSWORD)
    with site.client() as client:
        codes = [login(client, "guessed", f"wrong guess {n}").status_code for n in range(5)]
        assert codes == [401] * 5
        refused = login(client, "guessed", PASSWORD)  # even the right one, for a while
        assert refused.status_code == 429
        assert "分钟后再试" in refused.text


def test_the_throttle_forgets_after_its_window() -> None:
    throttle = Throttle(limit=3, window=60)
    for at in (0.0, 1.0, 2.0):
        throttle.failed("name:x", now=at)
    assert throttle.wait("name:x", now=3.0) > 0
    assert throttle.wait("name:x", now=61.0) == 0
    many = Throttle(limit=3, window=60, max_keys=100)
    for n in range(1000):
        many.failed(f"ip:{n}", now=0.0)
    assert len(many._failures) == 100


def test_disabling_or_a_new_password_ends_open_sessions(site: Site) -> None:
    accounts.add(site.store, "leaver", "editor", PASSWORD)
    accounts.add(site.store, "renewer", "editor", PASSWORD)
    with site.client() as a, site.client() as b:
        assert login(a, "leaver").status_code == 303
        assert login(b, "renewer").status_code == 303
        assert a.get("/playbooks").status_code == 200
        accounts.disable(site.store, "leaver")
        assert a.get("/playbooks").status_code == 303
        assert login(a, "leaver").status_code == 401
        accounts.set_password(site.store, "renewer", "another long passphrase")
        assert b.get("/playbooks").status_code == 303


def test_a_role_change_applies_at_the_next_request(site: Site) -> None:
    accounts.add(site.store, "mover", "editor", PASSWORD)
    with site.client() as client:
        login(client, "mover")
        csrf = csrf_of(client, "/playbooks")
        text = (site.root / "playbooks" / "birthday_greeting.yaml").read_text(encoding="utf-8")
        form = {"file": "birthday_greeting.yaml", "text": text}
        assert (
            client.post("/editor/save", data=form, headers={"X-CSRF-Token": csrf}).status_code
            == 200
        )
        accounts.set_role(site.store, "mover", "approver")
        assert (
            client.post("/editor/save", data=form, headers={"X-CSRF-Token": csrf}).status_code
            == 403
        )


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil"])
def test_login_never_redirects_off_the_site(site: Site, target: str) -> None:
    with site.client() as client:
        page = client.get("/login", params={"next": target})
        assert "evil" not in page.text
        response = login(client, site.names["editor"])
        assert response.headers["location"] == "/playbooks"


def test_login_without_its_form_token_is_refused(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        response = client.post("/login", data={"name": site.names["editor"], "password": PASSWORD})
    assert response.status_code == 403
    assert "care_session" not in response.headers.get("set-cookie", "")


class PastSigner(TimestampSigner):
    """Signs as if the cookie were made a working day and a minute ago."""

    def get_timestamp(self) -> int:
        return int(time.time()) - SESSION_SECONDS - 60


def test_an_expired_session_is_refused(site: Site) -> None:
    sessions = Sessions(SECRET)
    account = accounts.get(site.store, site.names["editor"])
    assert account is not None
    fresh = sessions.issue(account)
    payload = URLSafeTimedSerializer(SECRET, salt="care-console-session").loads(fresh)
    stale = URLSafeTimedSerializer(SECRET, salt="care-console-session", signer=PastSigner).dumps(
        payload
    )
    assert sessions.read(fresh) is not None and sessions.read(stale) is None
    with site.client() as client:
        client.cookies.set("care_session", stale)
        assert client.get("/playbooks").status_code == 303
        answer = client.post("/editor/diff", data={"text": "x"}, headers={"HX-Request": "true"})
        assert answer.status_code == 401 and "重新登录" in answer.text


def test_an_admin_disables_an_account_on_the_page_but_never_their_own(site: Site) -> None:
    accounts.add(site.store, "temp.staff", "editor", PASSWORD)
    with site.client() as staff, site.client("admin") as admin:
        assert login(staff, "temp.staff").status_code == 303
        csrf = csrf_of(admin, "/accounts")
        page = admin.get("/accounts").text
        assert 'data-account="temp.staff"' in page
        done = admin.post("/accounts/temp.staff/disable", data={"csrf_token": csrf})
        assert done.status_code == 303
        assert staff.get("/playbooks").status_code == 303  # the open session ended
        moved = admin.post(
            "/accounts/temp.staff/role", data={"csrf_token": csrf, "role": "auditor"}
        )
        assert moved.status_code == 303
        found = accounts.get(site.store, "temp.staff")
        assert found is not None and found.disabled and found.role == "auditor"
        own = admin.post(f"/accounts/{site.names['admin']}/disable", data={"csrf_token": csrf})
        assert own.status_code == 409
        me = accounts.get(site.store, site.names["admin"])
        assert me is not None and not me.disabled


def test_logins_saves_and_role_changes_are_in_the_audit_log(site: Site) -> None:
    accounts.add(site.store, "recorded", "editor", PASSWORD)
    with site.client() as client:
        assert login(client, "recorded", "not the password").status_code == 401
        assert login(client, "recorded").status_code == 303
        text = (site.root / "playbooks" / "birthday_greeting.yaml").read_text(encoding="utf-8")
        saved = client.post(
            "/editor/save",
            data={"file": "birthday_greeting.yaml", "text": text},
            headers={"X-CSRF-Token": csrf_of(client, "/playbooks")},
        )
        assert saved.status_code == 200
    mine = [(e["action"], e["subject"]) for e in audit.entries(site.store, actor="recorded")]
    assert mine[:3] == [
        ("playbook.save", "playbook:birthday-greeting"),
        ("login", mine[1][1]),
        ("login.failed", mine[2][1]),
    ]
    with site.client("auditor") as client:
        page = client.get("/audit", params={"actor": "recorded"}).text
    assert 'id="chain"' in page and "链完整" in page and "playbook.save" in page
