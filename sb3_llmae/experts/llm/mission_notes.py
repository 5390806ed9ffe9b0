"""
What a BabyAI mission's words mean, in notes that go with the observation text.

BabyAI missions compose clauses ("A and B", "A, then B", "A after you B") and place objects relative
to where the agent started ("the ball behind you", "a door on your left"). A step-mode prompt shows
the mission at every step while the agent turns and moves, so "on your left" would be read from the
agent's current facing, and "A after you B" in the order written. The notes say what the level's own
verifier checks; they are read from its instruction objects (``env.instrs``), not parsed from the text.
"""

from __future__ import annotations

import re

from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.envs.babyai.core.verifier import (
    AfterInstr,
    AndInstr,
    BeforeInstr,
    Instr,
    ObjDesc,
    PutNextInstr,
    SeqInstr,
)
from minigrid.minigrid_env import MiniGridEnv

AND_NOTE = "'A and B' in the mission: do both, in either order."
BEFORE_NOTE = "'A, then B' in the mission: first do A, then B."
AFTER_NOTE = "'A after you B' in the mission: first do B, then A."
LOCATION_NOTE = (
    "'in front of you', 'behind you', 'on your left' and 'on your right' in the mission mean as seen from "
    "the cell and facing you started the episode in, within the room you started in, not from where you "
    "are now."
)
PUT_NEXT_NOTE = (
    "To put an object next to another, carry it and drop it on a free cell directly beside the other "
    "(above, below, left or right of it, not diagonally)."
)
ANY_OBJECT_NOTE = "'a <object>' in the mission means any object that fits the words; several may."


def _clauses(instr: Instr) -> list[Instr]:
    if isinstance(instr, SeqInstr):
        return [instr, *_clauses(instr.instr_a), *_clauses(instr.instr_b)]
    return [instr]


def _descriptions(instr: Instr) -> list[ObjDesc]:
    if isinstance(instr, PutNextInstr):
        return [instr.desc_move, instr.desc_fixed]
    desc = getattr(instr, "desc", None)
    return [desc] if isinstance(desc, ObjDesc) else []


def mission_notes(env: MiniGridEnv) -> tuple[str, ...]:
    """
    :param env: an unwrapped MiniGrid env, reset
    :return: the notes its mission needs, in a fixed order; none for envs that are no BabyAI level
        (their missions say what they mean)
    """
    instrs = getattr(env, "instrs", None) if isinstance(env, RoomGridLevel) else None
    if instrs is None:
        return ()
    clauses = _clauses(instrs)
    descriptions = [desc for clause in clauses for desc in _descriptions(clause)]
    notes = []
    for kind, note in ((AndInstr, AND_NOTE), (BeforeInstr, BEFORE_NOTE), (AfterInstr, AFTER_NOTE)):
        if any(isinstance(clause, kind) for clause in clauses):
            notes.append(note)
    if any(desc.loc in ("front", "behind", "left", "right") for desc in descriptions):
        notes.append(LOCATION_NOTE)
    if any(isinstance(clause, PutNextInstr) for clause in clauses):
        notes.append(PUT_NEXT_NOTE)
    # The level writes "a" where several objects fit a description (ObjDesc.surface, which must not be
    # called here: it re-selects the objects from the agent's current cell).
    if re.search(r"\ba\b", env.mission):
        notes.append(ANY_OBJECT_NOTE)
    return tuple(notes)
