"""Users: argon2 hashes, roles and the permission table, disabling, and the `tcd user` commands."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from archive import users
from archive.cli import main
from archive.errors import InvalidInput, NotFound


def test_password_is_stored_as_argon2_and_checked(archive):
    user = users.add_user(archive, "thanhtra1", "inspector", "mật khẩu dài")
    assert user.password_hash.startswith("$argon2id$")
    assert "mật khẩu" not in user.password_hash
    assert users.authenticate(archive, "thanhtra1", "mật khẩu dài").name == "thanhtra1"
    assert users.authenticate(archive, "thanhtra1", "mật khẩu sai!") is None
    assert users.authenticate(archive, "nobody", "mật khẩu dài") is None


def test_disabled_user_cannot_sign_in(archive):
    users.add_user(archive, "cu", "handler", "12345678")
    users.disable_user(archive, "cu", actor="admin")
    assert users.authenticate(archive, "cu", "12345678") is None
    actions = [e["action"] for e in archive.catalog.audit_entries()]
    assert actions == ["user.add", "user.disable"]


@pytest.mark.parametrize("name,role,password,message", [
    ("a b", "inspector", "12345678", "user name"),
    ("", "inspector", "12345678", "user name"),
    ("ok", "chief", "12345678", "Unknown role"),
    ("ok", "inspector", "short", "at least 8"),
])
def test_bad_user_input_is_refused(archive, name, role, password, message):
    with pytest.raises(InvalidInput, match=message):
        users.add_user(archive, name, role, password)
    assert archive.catalog.list_users() == []


def test_duplicate_name_is_refused(archive):
    users.add_user(archive, "lan", "archivist", "12345678")
    with pytest.raises(InvalidInput, match="exists already"):
        users.add_user(archive, "lan", "admin", "12345678")


def test_permission_table():
    table = {role: sorted(users.ROLE_PERMISSIONS[role]) for role in users.ROLES}
    assert table == {
        "admin": ["access_report", "audit", "cite", "correct", "download", "jobs", "note", "play",
                  "preservation", "retention", "seal", "search", "upload", "users", "view"],
        "archivist": ["access_report", "cite", "correct", "download", "jobs", "note", "play",
                      "preservation", "retention", "seal", "search", "upload", "view"],
        "inspector": ["cite", "download", "note", "play", "search", "view"],
        "handler": ["cite", "correct", "download", "note", "play", "search", "view"],
    }
    assert users.can("admin", "users") and not users.can("archivist", "users")
    assert not users.can("nobody", "search")
    with pytest.raises(KeyError):
        users.can("admin", "fly")


def test_user_commands(home):
    runner = CliRunner()
    base = ["--home", str(home)]
    result = runner.invoke(main, base + ["user", "add", "mai", "--role", "archivist", "--password", "12345678"])
    assert result.exit_code == 0, result.output
    # Without --password it prompts twice (a typo in the confirmation is caught).
    result = runner.invoke(main, base + ["user", "add", "hung", "--role", "handler"],
                           input="mật khẩu mới\nmật khẩu mới\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, base + ["user", "add", "x", "--role", "inspector"], input="abcdefgh\nzzzzzzzz\nabcdefgh\nabcdefgh\n")
    assert result.exit_code == 0 and "do not match" in result.output
    result = runner.invoke(main, base + ["user", "add", "bad", "--role", "inspector", "--password", "short"])
    assert result.exit_code == 1 and "at least 8" in result.output
    result = runner.invoke(main, base + ["user", "add", "bad", "--role", "chief", "--password", "12345678"])
    assert result.exit_code == 2
    result = runner.invoke(main, base + ["user", "disable", "hung"])
    assert result.exit_code == 0
    result = runner.invoke(main, base + ["user", "disable", "ghost"])
    assert result.exit_code == 1 and "no user" in result.output
    result = runner.invoke(main, base + ["user", "list", "--json"])
    rows = {u["name"]: u for u in json.loads(result.output)}
    assert set(rows) == {"mai", "hung", "x"}
    assert rows["hung"]["disabled"] == 1 and "password_hash" not in rows["mai"]
    text = runner.invoke(main, base + ["user", "list"]).output
    assert "hung" in text and "disabled" in text


def test_authenticate_unknown_user_takes_a_hash_check(archive, monkeypatch):
    calls = []

    class Recording(type(users._hasher)):
        def verify(self, hash_, password):
            calls.append(hash_)
            return super().verify(hash_, password)

    monkeypatch.setattr(users, "_hasher", Recording())
    assert users.authenticate(archive, "ghost", "whatever1") is None
    assert calls == [users._DUMMY_HASH]
    with pytest.raises(NotFound):
        archive.catalog.get_user("ghost")
