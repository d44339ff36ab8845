"""cellgi.runtime: the host-allocator settings of the ``cellgi`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cellgi.runtime import HOST_ALLOCATOR_ENV, host_allocator_state, tune_host_allocator


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError, OSError):
        return False


needs_glibc = pytest.mark.skipif(not _glibc(), reason="mallopt tuning applies to Linux with glibc only")

# in a child process, so that the test process keeps its allocator: a 64 MiB tensor is allocated and
# freed; report where glibc put it (mmapped bytes while alive) and the settings' state
PROBE = textwrap.dedent(
    """
    import ctypes, json, torch
    from cellgi.runtime import host_allocator_state, tune_host_allocator

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    applied = tune_host_allocator()
    before = libc.mallinfo2().hblkhd
    t = torch.empty(64 << 20, dtype=torch.uint8)
    t.fill_(1)
    mmapped = libc.mallinfo2().hblkhd - before
    del t
    print(json.dumps({"applied": applied, "state": host_allocator_state(), "mmapped": mmapped,
                      "free_in_heap": libc.mallinfo2().fordblks}))
    """
)


def _probe(value: str | None) -> dict:
    env = dict(os.environ)
    env.pop(HOST_ALLOCATOR_ENV, None)
    if value is not None:
        env[HOST_ALLOCATOR_ENV] = value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_glibc
def test_tuned_allocator_keeps_large_blocks_in_the_heap():
    tuned = _probe(None)  # the default is tuned
    assert tuned["applied"] is True
    assert tuned["state"].startswith("tuned")
    assert tuned["mmapped"] == 0  # served from the heap ...
    assert tuned["free_in_heap"] >= 64 << 20  # ... and kept there for reuse after the free

    default = _probe("default")
    assert default["applied"] is False
    assert default["state"] == "default"
    assert default["mmapped"] >= 64 << 20  # glibc's own behaviour: a fresh mmap per large block


def test_unknown_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(HOST_ALLOCATOR_ENV, "fast")
    with pytest.raises(ValueError, match=rf"{HOST_ALLOCATOR_ENV}='fast' is not one of tuned, default"):
        tune_host_allocator()


def test_default_setting_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv(HOST_ALLOCATOR_ENV, "default")
    assert tune_host_allocator() is False
    assert host_allocator_state() == "default"


def test_command_refuses_unknown_setting():
    env = {**os.environ, HOST_ALLOCATOR_ENV: "fast"}
    out = subprocess.run([sys.executable, "-m", "cellgi", "--version"], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert f"{HOST_ALLOCATOR_ENV}='fast'" in out.stderr
