"""Pool table model: double-buffered commits that go live only at evaluation boundaries, lookups,
sibling lists, validation, and the host register block."""

from __future__ import annotations

import sys
import threading

import pytest

from mevblade.control.engine.software.pools import (
    MAX_SIBLINGS,
    PoolTable,
    PoolTableError,
    PoolTableRegs,
    RegError,
)
from mevblade.control.engine.software.types_swap import UINT112_MAX, PoolState

A, B, C = (bytes([i]) * 20 for i in (0x0A, 0x0B, 0x0C))
P = [bytes([0xF0 + i]) * 20 for i in range(12)]


def test_new_pool_is_invisible_until_the_boundary() -> None:
    t = PoolTable()
    slot = t.add_pool(P[0], A, B, 5, 7)
    assert t.read(slot) is None and t.pending == 1
    assert t.begin_eval() == 1
    rec = t.read(slot)
    assert rec is not None and (rec.reserve0, rec.reserve1, rec.generation) == (5, 7, 0)


def test_update_is_staged_then_flips_at_the_boundary() -> None:
    t = PoolTable()
    slot = t.add_pool(P[0], A, B, 5, 7)
    t.begin_eval()
    t.update_reserves(slot, 50, 70)
    assert (t.read(slot).reserve0, t.read(slot).reserve1) == (5, 7)  # evaluator still sees the old record
    assert t.latest(slot).reserve0 == 50  # the host sees what it wrote
    t.begin_eval()
    rec = t.read(slot)
    assert (rec.reserve0, rec.reserve1, rec.generation) == (50, 70, 1)


def test_two_commits_before_a_boundary_latest_wins_with_one_flip() -> None:
    t = PoolTable()
    slot = t.add_pool(P[0], A, B, 5, 7)
    t.begin_eval()
    t.update_reserves(P[0], 1, 2)
    t.update_reserves(P[0], 3, 4)
    assert t.pending == 1
    assert t.begin_eval() == 1
    assert (t.read(slot).reserve0, t.read(slot).reserve1) == (3, 4)
    assert t.begin_eval() == 0  # nothing pending: the record stays


def test_boundary_without_commits_keeps_records() -> None:
    t = PoolTable()
    slot = t.add_pool(P[0], A, B, 5, 7)
    t.begin_eval()
    before = t.read(slot)
    for _ in range(3):
        t.begin_eval()
    assert t.read(slot) is before


def test_tokens_are_sorted_with_their_reserves() -> None:
    t = PoolTable()
    slot = t.add_pool(P[0], B, A, 11, 22)  # B > A: stored as (A, B) with reserves swapped
    t.begin_eval()
    rec = t.read(slot)
    assert (rec.token0, rec.token1, rec.reserve0, rec.reserve1) == (A, B, 22, 11)
    assert rec.reserves_for(B) == (11, 22) and rec.reserves_for(A) == (22, 11)


def test_lookup_and_siblings() -> None:
    t = PoolTable()
    s0 = t.add_pool(P[0], A, B, 1, 1, venue=0)
    s1 = t.add_pool(P[1], B, A, 1, 1, venue=1)
    s2 = t.add_pool(P[2], A, C, 1, 1, venue=0)
    assert t.lookup(0, B, A) == s0 and t.lookup(1, A, B) == s1 and t.lookup(2, A, B) is None
    assert t.siblings(B, A) == (s0, s1) and t.siblings(A, C) == (s2,) and t.siblings(B, C) == ()
    assert t.slot_of(P[1]) == s1 and t.slot_of(P[5]) is None


def test_profit_token_preference() -> None:
    t = PoolTable(profit_tokens=(B,))
    assert t.profit_token(A, B) == B
    assert t.profit_token(A, C) == A  # neither: token0


@pytest.mark.parametrize("kwargs, code", [
    (dict(reserve_a=2**112), RegError.RESERVE_TOO_WIDE),
    (dict(reserve_b=-1), RegError.RESERVE_TOO_WIDE),
    (dict(fee_num=0), RegError.BAD_FEE),
    (dict(fee_num=1001), RegError.BAD_FEE),
    (dict(fee_num=997, fee_den=2**16), RegError.BAD_FEE),
    (dict(venue=256), RegError.BAD_VENUE),
])
def test_invalid_records_are_refused(kwargs: dict, code: RegError) -> None:
    t = PoolTable()
    with pytest.raises(PoolTableError, match="must") as exc:
        t.add_pool(P[0], A, B, **kwargs)
    assert exc.value.code is code
    assert t.pending == 0 and t.lookup(0, A, B) is None


def test_identical_or_zero_tokens_are_refused() -> None:
    t = PoolTable()
    with pytest.raises(PoolTableError) as exc:
        t.add_pool(P[0], A, A)
    assert exc.value.code is RegError.BAD_TOKENS
    with pytest.raises(PoolTableError):
        t.add_pool(P[0], bytes(20), A)


def test_identity_of_a_used_slot_cannot_change() -> None:
    t = PoolTable()
    slot = t.add_pool(P[0], A, B, 1, 1)
    other = PoolState(slot, P[0], A, C, 1, 1)
    with pytest.raises(PoolTableError) as exc:
        t.commit(other)
    assert exc.value.code is RegError.IDENTITY_CHANGED


def test_duplicate_pool_and_full_sibling_list() -> None:
    t = PoolTable()
    t.add_pool(P[0], A, B, venue=0)
    with pytest.raises(PoolTableError) as exc:
        t.add_pool(P[0], A, C, venue=1)
    assert exc.value.code is RegError.DUPLICATE_POOL
    with pytest.raises(PoolTableError) as exc:
        t.add_pool(P[1], A, B, venue=0)  # same venue + pair
    assert exc.value.code is RegError.DUPLICATE_POOL
    for v in range(1, MAX_SIBLINGS):
        t.add_pool(bytes([v]) * 19 + b"\x01", A, B, venue=v)
    with pytest.raises(PoolTableError) as exc:
        t.add_pool(P[2], A, B, venue=MAX_SIBLINGS)
    assert exc.value.code is RegError.SIBLINGS_FULL


def test_slot_out_of_range() -> None:
    t = PoolTable(capacity=2)
    t.add_pool(P[0], A, B)
    t.add_pool(P[1], A, C)
    with pytest.raises(PoolTableError) as exc:
        t.add_pool(P[2], B, C)
    assert exc.value.code is RegError.BAD_SLOT
    with pytest.raises(PoolTableError):
        t.read(2)


def test_records_never_change_during_an_evaluation_under_concurrent_commits() -> None:
    """A host thread commits records whose fields are tied together (reserve1 = 3*reserve0 + 1, fee
    numerator = reserve0 % 997 + 1); the evaluator thread checks every record it reads is whole, and
    that a record read twice within one evaluation is the same record."""
    t = PoolTable(capacity=8)
    for i in range(8):
        t.add_pool(P[i], A, bytes([0x20 + i]) * 20, 0, 1, fee_num=1, fee_den=1000)
    t.begin_eval()
    stop = threading.Event()
    errors: list[str] = []

    def host() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            for i in range(8):
                cur = t.latest(i)
                assert cur is not None
                t.commit(PoolState(i, cur.address, cur.token0, cur.token1, n, 3 * n + 1, n % 997 + 1, 1000))

    writer = threading.Thread(target=host)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the two threads as finely as CPython allows
    writer.start()
    evaluations = flips = 0
    try:
        while evaluations < 3000:
            flips += t.begin_eval()
            first = [t.read(i) for i in range(8)]
            for _ in range(3):
                again = [t.read(i) for i in range(8)]
                if again != first:
                    errors.append("a record changed inside an evaluation")
            for rec in first:
                assert rec is not None
                if rec.reserve1 != 3 * rec.reserve0 + 1 or rec.fee_num != rec.reserve0 % 997 + 1:
                    errors.append(f"torn record {rec}")
            evaluations += 1
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(old_interval)
    assert not errors, errors[:3]
    assert flips > 0  # the writer really ran concurrently


# ------------------------------------------------------------------ register block


def _write_value(regs: PoolTableRegs, base: int, value: int, words: int) -> None:
    for i in range(words):
        regs.write(base + 4 * i, (value >> (32 * i)) & 0xFFFFFFFF)


def _register(regs: PoolTableRegs, slot: int, pool: bytes, t0: bytes, t1: bytes, r0: int, r1: int,
              fee: tuple[int, int] = (997, 1000), venue: int = 0) -> None:
    regs.write(0x10, slot)
    _write_value(regs, 0x50, int.from_bytes(pool, "big"), 5)
    _write_value(regs, 0x70, int.from_bytes(t0, "big"), 5)
    _write_value(regs, 0x90, int.from_bytes(t1, "big"), 5)
    _write_value(regs, 0x20, r0, 4)
    _write_value(regs, 0x30, r1, 4)
    regs.write(0x40, fee[0] | fee[1] << 16)
    regs.write(0x44, venue)
    regs.write(0x08, 1)


def test_register_block_builds_the_same_record_as_the_api() -> None:
    api, t = PoolTable(), PoolTable()
    regs = PoolTableRegs(t)
    r0, r1 = UINT112_MAX, 2**100 + 12345
    api.add_pool(P[3], A, B, r0, r1, 9975, 10000, venue=3)
    _register(regs, 0, P[3], A, B, r0, r1, (9975, 10000), 3)
    assert regs.read(0x14) == RegError.OK and regs.read(0x18) == 1
    api.begin_eval()
    t.begin_eval()
    assert t.read(0) == api.read(0)
    assert regs.read(0x00) == PoolTableRegs.ID and regs.read(0x04) == t.capacity and regs.read(0x0C) == 1


def test_register_sync_path_slot_load_then_reserves_then_commit() -> None:
    t = PoolTable()
    regs = PoolTableRegs(t)
    _register(regs, 5, P[0], A, B, 10, 20)
    _register(regs, 6, P[1], A, C, 30, 40)
    t.begin_eval()
    regs.write(0x10, 5)  # loads staging from slot 5's record
    assert regs.read(0x20) == 10 and regs.read(0x50) == int.from_bytes(P[0], "big") & 0xFFFFFFFF
    _write_value(regs, 0x20, 11, 4)
    _write_value(regs, 0x30, 21, 4)
    regs.write(0x08, 1)
    assert regs.read(0x14) == RegError.OK
    assert t.read(5).reserve0 == 10  # not before the boundary
    t.begin_eval()
    assert (t.read(5).reserve0, t.read(5).reserve1, t.read(5).generation) == (11, 21, 1)
    assert t.read(6).reserve0 == 30


@pytest.mark.parametrize("mutate, code", [
    (lambda regs: regs.write(0x2C, 1 << 16), RegError.RESERVE_TOO_WIDE),  # bit 112 of reserve0
    (lambda regs: regs.write(0x40, 1001 | 1000 << 16), RegError.BAD_FEE),
    (lambda regs: _write_value(regs, 0x90, int.from_bytes(C, "big"), 5), RegError.IDENTITY_CHANGED),
    (lambda regs: regs.write(0x10, 10**6), RegError.BAD_SLOT),
])
def test_register_commit_errors_leave_the_table_unchanged(mutate, code: RegError) -> None:
    t = PoolTable()
    regs = PoolTableRegs(t)
    _register(regs, 0, P[0], A, B, 10, 20)
    t.begin_eval()
    regs.write(0x10, 0)
    mutate(regs)
    regs.write(0x08, 1)
    assert regs.read(0x14) == code
    assert t.pending == 0 and t.begin_eval() == 0
    assert (t.read(0).reserve0, t.read(0).reserve1, t.read(0).token1) == (10, 20, B)


def test_register_data_must_be_32_bit() -> None:
    regs = PoolTableRegs(PoolTable())
    with pytest.raises(ValueError, match="32-bit"):
        regs.write(0x20, 1 << 32)
