"""The study's live progress: counts, ETAs, the live block in a terminal, plain lines elsewhere."""
import io
from types import SimpleNamespace

from orchestrator.study_file.plan import Arm, Study
from orchestrator.running.progress import PLAIN_SUMMARY_EVERY_S, ProgressBoard, StudyProgress, TrialProgress, format_duration
from orchestrator.study_file.schema import Objective


def study(steps=100) -> Study:
    return Study(name="demo", preset="smoke", budget="smoke", fixed={}, space={}, sampler="grid", n_trials=None,
                 sampler_seed=0, population_size=None, seeds=[0], objectives=[Objective(metric="mig")],
                 early_stopping=None, resources=None, max_concurrent=2, storage=None, retries=0, kind="ablation",
                 arms=[Arm("did", "did", {}, {}, steps=steps)], steps=steps)


def trial(number, **params):
    return SimpleNamespace(config={"number": number, "arm": "did", "seed": 0, "params": params})


def report(kind, step, **kw):
    return {"kind": kind, "step": step, "node": "n", "host": "h", "started": 0.0, **kw}


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_trial_and_study_eta_from_measured_speed():
    state = StudyProgress(todo=4, steps=100)
    a, b = TrialProgress(0, "a", 100), TrialProgress(1, "b", 100)
    a.first, a.last, a.step = (0.0, 10), (10.0, 30), 30  # 2 steps/s: 70 steps left = 35 s
    state.running = {0: a, 1: b}
    assert a.eta_s() == 35.0 and b.eta_s() is None
    # b unmeasured counts at a's speed: (70 + 100 + 2 queued x 100) / (2 x 2 steps/s)
    assert state.queued == 2 and state.eta_s() == (70 + 100 + 200) / 4.0
    assert state.summary() == "0 finished, 2 running, 2 queued; study ETA 1m32s"
    assert format_duration(3725) == "1h02m" and format_duration(None) == "-"


def test_plain_output_is_a_line_per_trial_event_and_at_most_one_summary_a_minute():
    lines, clock = [], Clock()
    board = ProgressBoard(study(), todo=2, log=lines.append, interactive=False, clock=clock)
    board.on_trial_start(0, [], trial(0, n_compare_dims=1))
    for step in range(10, 101, 10):  # 10 results in 90 s: one summary line, the first after 60 s (63 s)
        clock.t = step * 0.9
        board.on_trial_result(0, [], trial(0), report("progress", step, images_per_sec=50.0))
        board.on_step(0, [])
    board.on_trial_complete(0, [], trial(0))
    assert lines[0].startswith("trial 0 (n_compare_dims=1, seed 0) started; 0 finished, 1 running, 1 queued")
    summaries = [line for line in lines if line.startswith("progress:")]
    assert len(summaries) == 1 and "trial 0 step 70/100" in summaries[0]
    assert len(lines) == 2 and board.state.finished == 1 and board.state.queued == 1


def test_live_block_shows_each_running_trial():
    out, clock = io.StringIO(), Clock()
    out.isatty = lambda: True
    board = ProgressBoard(study(), todo=3, out=out, clock=clock)
    board.on_trial_start(0, [], trial(0, n_compare_dims=2))
    clock.t = 1.0
    board.on_trial_result(0, [], trial(0), report("progress", 10, images_per_sec=123.0))
    clock.t = 6.0
    board.on_trial_result(0, [], trial(0), report("eval", 20, scores={"fast/mig": 0.4321}))
    board.close()
    screen = out.getvalue()
    assert "demo: 0 finished, 1 running, 2 queued" in screen
    # 10 steps in 5 s: 80 steps left take 40 s; the study (80 + 2 queued x 100) / 2 steps/s = 2m20s
    for cell in ("n_compare_dims=2, seed 0", "20/100", "123", "0.4321", "fast/mig", "0m40s", "study ETA 2m20s"):
        assert cell in screen, cell


def test_the_board_survives_tunes_pickling():
    import pickle

    board = ProgressBoard(study(), todo=2, log=print, interactive=False)
    board.on_trial_start(0, [], trial(0, n_compare_dims=1))
    copy = pickle.loads(pickle.dumps(board))
    assert copy.state.running[0].label == "n_compare_dims=1, seed 0"
    copy.on_trial_complete(0, [], trial(0))
    assert copy.state.finished == 1
