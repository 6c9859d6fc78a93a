"""Review sessions: statuses, history, autosave recovery after a killed process, locks, audit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from napari_medseg.core.errors import WriteError
from napari_medseg.io.detect import open_dataset
from napari_medseg.io.masks import mask_path, read_mask, write_mask
from napari_medseg.review.locks import LockedError
from napari_medseg.review.session import ReviewSession, TransitionError


@pytest.fixture
def out(tmp_path):
    return tmp_path / "review"


def test_status_transitions(msd_spleen, out):
    s = ReviewSession.open(msd_spleen, out, "alice")
    assert s.statuses() == {"spleen_1": "todo", "spleen_2": "todo", "spleen_3": "todo"}
    s.open_case("spleen_1")
    assert s.entry("spleen_1")["status"] == "in_progress"
    s.set_status("spleen_1", "needs_fix", notes="left edge missing")
    with pytest.raises(TransitionError, match="reopen it first"):
        s.set_status("spleen_1", "accepted")
    s.set_status("spleen_1", "in_progress")
    s.set_status("spleen_1", "accepted")
    with pytest.raises(TransitionError, match="unknown status"):
        s.set_status("spleen_2", "done")
    e = s.entry("spleen_1")
    assert (e["status"], e["reviewer"], e["notes"]) == ("accepted", "alice", "left edge missing")
    assert s.queue({"accepted"}) == ["spleen_1"]
    assert s.neighbour("spleen_1", 1) == "spleen_2" and s.neighbour("spleen_1", -1) is None
    assert s.neighbour("spleen_3", 1, {"todo"}) is None
    assert s.neighbour("spleen_3", -1, {"todo"}) == "spleen_2"
    # State lives on disk: a new session sees it.
    assert ReviewSession.open(msd_spleen, out, "bob").statuses()["spleen_1"] == "accepted"


def test_history_of_versions_and_mask_convention(msd_spleen, out):
    s = ReviewSession.open(msd_spleen, out, "alice", initial_by="unet")
    opened = s.open_case("spleen_1")
    assert opened.origin == "initial"
    first = opened.mask.copy()
    first[3, 5:9, 5:9] = 1
    s.save("spleen_1", first)
    second = first.copy()
    second[4, 5:9, 5:9] = 1
    s.save("spleen_1", second, status="accepted", notes="ok")
    hist = s.entry("spleen_1")["history"]
    assert [(v["version"], v["kind"], v["by"]) for v in hist] == [
        (0, "initial", "unet"),
        (1, "correction", "alice"),
        (2, "correction", "alice"),
    ]
    assert [v["file"] for v in hist][1] == "history/spleen_1/v1_alice.nii.gz"
    case = open_dataset(msd_spleen).load_case("spleen_1")
    ref = case.reference_image()
    np.testing.assert_array_equal(read_mask(out / hist[0]["file"], ref).array, case.masks[0].array)
    np.testing.assert_array_equal(read_mask(out / hist[1]["file"], ref).array, first)
    # The current mask follows the <out>/<case id>.nii.gz convention, on the source grid.
    np.testing.assert_array_equal(read_mask(mask_path(out, "spleen_1"), ref).array, second)
    # Pre-segmentation vs the final correction: exactly the two added 4x4 patches differ.
    (m,) = s.compare_versions("spleen_1")
    n0 = int((case.masks[0].array == 1).sum())
    added = int((second == 1).sum()) - n0
    assert m.dice == pytest.approx(2 * n0 / (2 * n0 + added))
    assert m.volume_ml_mask - m.volume_ml_reference == pytest.approx(
        added * np.prod(ref.spacing) / 1000
    )
    s.close()
    assert ReviewSession.open(msd_spleen, out, "bob").open_case("spleen_1").origin == "saved"


def test_out_folder_inside_source_is_refused(msd_spleen):
    with pytest.raises(WriteError, match="inside the source"):
        ReviewSession.open(msd_spleen, msd_spleen / "review", "alice")


KILLED_EDITOR = """
import os, sys, numpy as np
from napari_medseg.review.session import ReviewSession
s = ReviewSession.open(sys.argv[1], sys.argv[2], "alice")
m = s.open_case("spleen_2").mask
m[7, 10:30, 10:30] = 1          # an edit...
s.autosave("spleen_2", m)        # ...autosaved by the timer
m[8, 10:30, 10:30] = 1          # a later edit, never autosaved
print("autosaved", flush=True)
sys.stdin.read()                 # the reviewer keeps working until the process is killed
"""


def test_autosave_restored_after_the_process_is_killed(msd_spleen, out):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_EDITOR), str(msd_spleen), str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "autosaved"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The killed session left its lock behind; its pid is gone, so the lock is stale.
    s = ReviewSession.open(msd_spleen, out, "alice")
    opened = s.open_case("spleen_2")
    assert opened.recovered
    assert opened.mask[7, 10:30, 10:30].all()
    assert not opened.mask[8, 10:30, 10:30].all()  # after the last autosave: lost, as expected
    assert not list((out / "autosave").glob(".*")), "no temp file left by the atomic writes"
    s.save("spleen_2", opened.mask, status="accepted")
    assert not s.has_autosave("spleen_2")
    actions = [e["action"] for e in s.audit.entries("spleen_2")]
    assert actions == ["open", "open", "recover_autosave", "save"]


def test_locks_between_two_sessions(msd_spleen, out):
    a = ReviewSession.open(msd_spleen, out, "alice")
    b = ReviewSession.open(msd_spleen, out, "bob")
    a.open_case("spleen_1")
    with pytest.raises(LockedError, match="open by alice"):
        b.open_case("spleen_1")
    with pytest.raises(LockedError):
        b.set_status("spleen_1", "rejected")
    with pytest.raises(LockedError):
        b.save("spleen_1", np.zeros((16, 48, 48), np.uint8))
    assert b.locked_by("spleen_1")["owner"] == "alice"
    b.open_case("spleen_2")  # other cases stay free
    # Each session's changes to its own case survive the other's writes of session.json.
    a.set_status("spleen_1", "accepted")
    b.set_status("spleen_2", "rejected")
    assert a.statuses() == {"spleen_1": "accepted", "spleen_2": "rejected", "spleen_3": "todo"}
    a.close_case("spleen_1")
    assert b.open_case("spleen_1").origin == "initial"


def test_stale_lock_expires(msd_spleen, out):
    a = ReviewSession.open(msd_spleen, out, "alice", stale_after=3600)
    a.open_case("spleen_1")
    lock_file = out / "locks" / "spleen_1.lock"
    info = json.loads(lock_file.read_text())
    info["heartbeat"] = time.time() - 120  # alice's machine went silent two minutes ago
    info["host"] = "another-host"  # so the pid cannot be checked from here
    lock_file.write_text(json.dumps(info))
    with pytest.raises(LockedError):
        ReviewSession.open(msd_spleen, out, "bob", stale_after=3600).open_case("spleen_1")
    b = ReviewSession.open(msd_spleen, out, "bob", stale_after=60)
    b.open_case("spleen_1")
    assert json.loads(lock_file.read_text())["owner"] == "bob"
    # Alice's session notices it lost the lock instead of overwriting bob's work.
    with pytest.raises(LockedError, match="taken over"):
        a.save("spleen_1", np.zeros((16, 48, 48), np.uint8))


def test_audit_log_is_append_only_json_lines(msd_spleen, out):
    s = ReviewSession.open(msd_spleen, out, "alice")
    s.open_case("spleen_3")
    s.set_status("spleen_3", "rejected", notes="wrong organ")
    s.close()
    lines = (out / "audit.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["who"], e["action"], e["case"]) for e in entries] == [
        ("alice", "open", "spleen_3"),
        ("alice", "set_status", "spleen_3"),
        ("alice", "close", "spleen_3"),
    ]
    assert entries[1]["before"] == "in_progress" and entries[1]["notes"] == "wrong organ"
    assert all("time" in e for e in entries)
    with open(out / "audit.log", "a") as fh:
        fh.write('{"time": "torn')  # a crash mid-line
    ReviewSession.open(msd_spleen, out, "bob").set_status("spleen_1", "accepted")
    assert [e["who"] for e in s.audit.entries()] == ["alice", "alice", "alice", "bob"]


def test_presegmentation_folder_is_version_zero(msd_spleen, tmp_path):
    case = open_dataset(msd_spleen).load_case("spleen_3")  # a test case: no mask in the dataset
    ref = case.reference_image()
    preseg = np.zeros(ref.shape, np.uint8)
    preseg[6:9, 15:25, 15:25] = 1
    write_mask(ref, preseg, mask_path(tmp_path / "preseg", "spleen_3"))
    s = ReviewSession.open(msd_spleen, tmp_path / "review", "alice", initial=tmp_path / "preseg",
                           initial_by="unet")  # fmt: skip
    opened = s.open_case("spleen_3")
    assert opened.origin == "initial"
    np.testing.assert_array_equal(opened.mask, preseg)
    (v0,) = s.entry("spleen_3")["history"]
    assert (v0["kind"], v0["by"], v0["file"]) == (
        "initial",
        "unet",
        "history/spleen_3/v0_unet.nii.gz",
    )
    # The session remembers where its pre-segmentations came from.
    again = ReviewSession.open(msd_spleen, tmp_path / "review", "bob")
    assert (again.initial, again.initial_by) == (tmp_path / "preseg", "unet")
    assert again.open_case("spleen_1").origin == "empty"  # no pre-segmentation for it


def test_edited_labelmap_is_saved_with_the_curation_output(msd_spleen, out):
    from napari_medseg.core.labelmap import Label

    s = ReviewSession.open(msd_spleen, out, "alice")
    opened = s.open_case("spleen_1")
    edited = opened.labelmap.renamed(1, "spleen (edited)").with_label(
        Label(2, "accessory spleen", (0, 200, 90))
    )
    s.save("spleen_1", opened.mask, labelmap=edited)
    assert (out / "labelmap.json").is_file()
    reopened = ReviewSession.open(msd_spleen, out, "bob").open_case("spleen_2")
    assert reopened.labelmap.names() == {
        0: "background",
        1: "spleen (edited)",
        2: "accessory spleen",
    }
