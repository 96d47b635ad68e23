"""`make test` installs Chromium only when it is missing, through sudo when not root, and says
what is missing when it cannot. The real Makefile runs under real make and sh; only the system
tools it calls (id, sudo, apt-get) are stand-ins that record their arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _tools(tmp_path: Path, uid: int, sudo: bool, apt_get: bool = True) -> Path:
    """A PATH with the real make, sh and env, and stand-ins for id, sudo and apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("make", "sh", "env", "cat"):
        real = shutil.which(name)
        assert real is not None
        (bin_dir / name).symlink_to(real)
    log = tmp_path / "calls.log"
    scripts = {"id": f"#!/bin/sh\necho {uid}\n"}
    if apt_get:
        scripts["apt-get"] = f'#!/bin/sh\necho "apt-get $*" >> {log}\n'
    if sudo:
        scripts["sudo"] = f'#!/bin/sh\necho "sudo $*" >> {log}\nexec "$@"\n'
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _make_chromium(bin_dir: Path, chromium: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "make"), "-s", "-C", str(ROOT), str(chromium), f"CHROMIUM={chromium}"],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/tmp")},
        timeout=60,
        check=False,
    )


def test_present_chromium_is_not_installed_again(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.write_text("")
    done = _make_chromium(_tools(tmp_path, uid=1000, sudo=True), chromium)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "calls.log").exists()


def test_root_installs_with_apt_get_directly(tmp_path: Path) -> None:
    done = _make_chromium(_tools(tmp_path, uid=0, sudo=False), tmp_path / "chromium")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["apt-get update -qq", "apt-get install -y -qq chromium"]


def test_another_user_installs_through_sudo(tmp_path: Path) -> None:
    done = _make_chromium(_tools(tmp_path, uid=1000, sudo=True), tmp_path / "chromium")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[0] == "sudo apt-get update -qq"
    assert calls[2].startswith("sudo env DEBIAN_FRONTEND=noninteractive apt-get install")
    assert "installing it with sudo apt-get" in done.stderr


def test_no_sudo_and_not_root_says_what_to_install(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    done = _make_chromium(_tools(tmp_path, uid=1000, sudo=False), chromium)
    assert done.returncode != 0
    assert f"the dashboard's browser tests need {chromium}" in done.stderr
    assert "run 'apt-get install chromium' as root" in done.stderr
    assert not (tmp_path / "calls.log").exists()


def test_no_apt_get_says_what_is_missing(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    done = _make_chromium(_tools(tmp_path, uid=0, sudo=False, apt_get=False), chromium)
    assert done.returncode != 0
    assert f"install Chromium so that {chromium} exists" in done.stderr
