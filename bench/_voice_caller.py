"""One caller of bench/voice.py, in a process of its own: speaks the turn-taking corpus.

It joins ``--room``, speaks each scenario with hibari's voice (complete questions, questions with
a thinking pause in the middle, backchannels and a noise burst over the agent, real barge-ins)
and prints one JSON line per scenario with what it measured at its own end: when its speech
ended, when the agent's voice came, and whether the agent's voice stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.room import dispose_rtc  # noqa: E402
from tests.harness.caller import Caller, caller  # noqa: E402
from tests.harness.participants import Access  # noqa: E402

RATE = 24_000
AGENT = "voice-agent"
# Silence this long means the agent's reply (and any answer after it) is over; an unfinished
# phrase may wait up to max_endpointing_ms (2 s) before its answer starts.
QUIET_S = 2.5
STORY = "please tell me a story about the sea"

COMPLETE = (
    "what is the weather going to be like this weekend",
    "can you book me a table for two people tonight",
    "how long does it take to drive to the airport",
    "please remind me to call my sister tomorrow morning",
    "what time does the last train leave the station",
    "could you tell me what time the pharmacy opens tomorrow",
)
# (first half, pause, second half): most pauses come after a word that cannot end a sentence,
# as thinking pauses mostly do; the last two come after a word that could.
PAUSED = (
    ("i would like to order a pizza with", 0.6, "mushrooms and extra cheese"),
    ("can you tell me how to get to the", 0.7, "nearest train station"),
    ("my flight was cancelled and", 0.8, "i need to book another one"),
    ("i am looking for a restaurant that", 0.6, "serves vegetarian food"),
    ("please send the report to", 0.7, "my manager before noon"),
    ("what is the best way to", 0.8, "learn a new language quickly"),
    ("i need a taxi", 0.7, "to the airport at six"),
    ("can you check my account balance", 0.6, "and my last payment"),
)
BACKCHANNELS = ("uh-huh", "mm-hmm", "yeah", "okay", "right")
BARGE_INS = ("wait, stop, i have a different question", "sorry, can i ask something else")


class Voice:
    def __init__(self) -> None:
        import hibari

        self._hibari = hibari.Hibari()

    def __call__(self, text: str) -> np.ndarray:
        audio = self._hibari(text, seed=1)
        pcm: np.ndarray = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        return pcm


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def noise_burst() -> np.ndarray:
    """A cough-like burst: 300 ms of noise, loud at once, then decaying."""
    n = int(0.3 * RATE)
    rng = np.random.default_rng(7)
    envelope = np.exp(-np.arange(n) / (0.08 * RATE))
    return (rng.normal(0, 0.35, n) * envelope * 32767).clip(-32767, 32767).astype(np.int16)


def seconds(pcm: np.ndarray) -> float:
    return len(pcm) / RATE


def trailing_s(pcm: np.ndarray) -> float:
    """The near-silence (below -50 dBFS) after the last word: hibari pads ~0.4 s.

    Voice to voice is timed from the end of the voice, not of the padded buffer (that would
    hide the padding from the figure); the 100 ms the caller's AudioSource queues ahead is not
    taken off, so the figure errs on the slow side by up to that.
    """
    loud = np.nonzero(np.abs(pcm) > 100)[0]
    return (len(pcm) - int(loud[-1])) / RATE if len(loud) else 0.0


TRIM_MARGIN_S = 0.06  # kept around the voice: a word's soft ending ("with") fades below -50 dBFS


def trimmed(pcm: np.ndarray, *, front: bool = False, back: bool = False) -> np.ndarray:
    """``pcm`` without most of hibari's near-silence (~0.3 s before the first word, ~0.4 s after
    the last) at the ``front`` and/or ``back``, so that a pause put between two halves is about
    as long as it says (with the padding, a "700 ms" pause was ~1.4 s of silence; now ~0.1 s
    more than it says). Cut closer, the first half's last word is misheard more often."""
    loud = np.nonzero(np.abs(pcm) > 100)[0]
    if not len(loud):
        return pcm
    margin = int(TRIM_MARGIN_S * RATE)
    start = max(0, int(loud[0]) - margin) if front else 0
    end = min(len(pcm), int(loud[-1]) + 1 + margin) if back else len(pcm)
    return pcm[start:end]


def voice_after(bot: Caller, t: float) -> float | None:
    return next((v for v in bot.voiced_at if v >= t), None)


def story_ended_between(bot: Caller, t0: float, t1: float) -> bool:
    """Did the agent's story end (its caption stream closed) in [t0, t1]?

    Each reply is one caption stream that the agent closes when the reply ends, played out or
    cut; a story told in full ends ~15 s after it began, long after the window.
    """
    return any(
        c.sender == AGENT and c.text.startswith("Once upon") and t0 <= c.at <= t1
        for c in bot.captions
    )


async def wait_quiet(bot: Caller, *, deadline_s: float = 40.0) -> None:
    """Until the agent has been silent for QUIET_S (its reply, and any answer after, are over)."""
    with anyio.fail_after(deadline_s):
        while True:
            now = anyio.current_time()
            last = bot.voiced_at[-1] if bot.voiced_at else 0.0
            if now - last >= QUIET_S:
                return
            await anyio.sleep(0.05)


async def wait_voice(bot: Caller, t: float, *, deadline_s: float = 15.0) -> float | None:
    # The caller's recorder notifies on the first audible frame after its last utterance.
    try:
        await bot.wait_for(lambda: voice_after(bot, t) is not None, deadline_s=deadline_s, what="")
    except TimeoutError:
        return None
    return voice_after(bot, t)


def user_finals(bot: Caller) -> int:
    return len(bot.finals(bot.identity))


async def question(bot: Caller, pcm: np.ndarray, kind: str, text: str) -> dict[str, Any]:
    finals_before = user_finals(bot)
    await bot.say(pcm.tobytes(), RATE)
    sent = anyio.current_time()
    end = sent - trailing_s(pcm)
    heard = await wait_voice(bot, end)
    await wait_quiet(bot)
    return {
        "kind": kind,
        "text": text,
        "v2v_ms": None if heard is None else round(1000 * (heard - end), 1),
        "user_turns": user_finals(bot) - finals_before,
    }


async def paused(
    bot: Caller, voice: Voice, first: str, pause: float, second: str
) -> dict[str, Any]:
    head, tail = trimmed(voice(first), back=True), trimmed(voice(second), front=True)
    finals_before = user_finals(bot)
    await bot.say(np.concatenate([head, silence(pause), tail]).tobytes(), RATE)
    sent = anyio.current_time()
    end = sent - trailing_s(tail)
    head_end = sent - seconds(tail) - pause - trailing_s(head)
    heard = await wait_voice(bot, end)
    await wait_quiet(bot)
    # Cut off: the agent spoke into the pause or over the second half, or took the first half
    # as a turn of its own.
    spoke_early = any(head_end <= v < end for v in bot.voiced_at)
    turns = user_finals(bot) - finals_before
    return {
        "kind": "paused",
        "text": f"{first} … {second}",
        "pause_ms": round(pause * 1000),
        # After a word a sentence cannot end with ("with", "the", "and"), or one it can.
        "pause_after": "content" if (first, pause, second) in PAUSED[-2:] else "function",
        "cutoff": spoke_early or turns > 1,
        "v2v_ms": None if heard is None or spoke_early else round(1000 * (heard - end), 1),
        "user_turns": turns,
    }


async def over_the_agent(
    bot: Caller, voice: Voice, kind: str, label: str, pcm: np.ndarray
) -> dict[str, Any]:
    """Ask for a long story, then speak ``pcm`` 1.5 s into it; did the agent stop?"""
    await bot.say(voice(STORY).tobytes(), RATE)
    asked = anyio.current_time()
    started = await wait_voice(bot, asked)
    if started is None:
        await wait_quiet(bot)
        return {"kind": kind, "text": label, "error": "no story"}
    await anyio.sleep(1.5 - (anyio.current_time() - started))
    await bot.say(pcm.tobytes(), RATE)
    end = anyio.current_time()
    start = end - seconds(pcm)
    # A barge-in should stop the agent while the caller speaks (or just after); a backchannel
    # should leave it talking through the next 1.5 s.
    window_end = end + (1.0 if kind == "barge_in" else 1.5)
    await anyio.sleep(window_end - anyio.current_time() + 0.05)
    stopped = story_ended_between(bot, start, window_end)
    await wait_quiet(bot)
    return {"kind": kind, "text": label, "stopped": stopped}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--identity", default="caller")
    args = parser.parse_args()
    voice = Voice()

    def emit(result: dict[str, Any]) -> None:
        print(json.dumps(result), flush=True)

    server = Access(args.url, args.key, args.secret)
    async with caller(server, args.room, args.identity, agent_identity=AGENT) as bot:
        await anyio.sleep(1.0)  # let the agent's listener settle on our track
        for text in COMPLETE:
            emit(await question(bot, voice(text), "complete", text))
        for first, pause, second in PAUSED:
            emit(await paused(bot, voice, first, pause, second))
        for word in BACKCHANNELS:
            emit(await over_the_agent(bot, voice, "backchannel", word, voice(word)))
        emit(await over_the_agent(bot, voice, "backchannel", "noise burst", noise_burst()))
        for text in BARGE_INS:
            emit(await over_the_agent(bot, voice, "barge_in", text, voice(text)))
    dispose_rtc()


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
