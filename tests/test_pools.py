"""Pool table model: double-buffered commits that go live only at evaluation boundaries, lookups,
sibling lists, validation, and the host register block."""

from __future__ import annotations

import sys
import threading

import pytest

from mevblade.control.engine.regmap import ADDR
from mevblade.control.engine.software.pools import (
    MAX_SIBLINGS,
    PoolTable,
    PoolTableError,
    PoolTableRegs,
    RegError,
    pack_record,
    unpack_record,
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


# ------------------------------------------------------------------ register block (appliance map)

def _stage(regs: PoolTableRegs, slot: int, r0: int, r1: int, fee: tuple[int, int] = (997, 1000)) -> None:
    regs.write(ADDR["pool_addr"], slot)
    v = r0 | r1 << 112 | fee[0] << 224 | fee[1] << 240
    for i in range(8):
        regs.write(ADDR[f"pool_data_{i}"], (v >> (32 * i)) & 0xFFFFFFFF)


def test_record_layout_round_trip() -> None:
    rec = PoolState(0, P[0], A, B, UINT112_MAX, 2**100 + 5, 9975, 10000)
    words = pack_record(rec)
    assert len(words) == 8 and all(0 <= w < 2**32 for w in words)
    assert unpack_record(words) == (UINT112_MAX, 2**100 + 5, 9975, 10000)
    assert words[7] >> 16 == 10000 and words[7] & 0xFFFF == 9975  # fee_den on top, fee_num below
    assert words[3] >> 16 == (2**100 + 5) & 0xFFFF  # reserve1 starts at bit 112


def test_register_sync_path_commits_at_the_boundary_and_reads_back() -> None:
    t = PoolTable()
    s0 = t.add_pool(P[0], A, B, 10, 20)
    s1 = t.add_pool(P[1], A, C, 30, 40)
    t.begin_eval()
    regs = PoolTableRegs(t)
    _stage(regs, s0, UINT112_MAX, 2**111 + 3, (9975, 10000))
    regs.write(ADDR["pool_cmd"], 1)
    assert regs.last_error is RegError.OK
    assert regs.read(ADDR["status"]) & 4  # pool_busy until the boundary
    assert t.read(s0).reserve0 == 10
    t.begin_eval()
    assert regs.read(ADDR["status"]) & 4 == 0
    rec = t.read(s0)
    assert (rec.reserve0, rec.reserve1, rec.fee_num, rec.fee_den, rec.generation) == (
        UINT112_MAX, 2**111 + 3, 9975, 10000, 1)
    assert t.read(s1).reserve0 == 30 and rec.address == P[0] and rec.token1 == B  # identity kept
    regs.write(ADDR["pool_addr"], s0)
    regs.write(ADDR["pool_cmd"], 2)  # readback
    assert [regs.read(ADDR[f"pool_rdata_{i}"]) for i in range(8)] == pack_record(rec)


@pytest.mark.parametrize("slot, fee, code", [
    (0, (1001, 1000), RegError.BAD_FEE),
    (0, (0, 1000), RegError.BAD_FEE),
    (0, (0, 0), RegError.BAD_FEE),
    (1, (997, 1000), RegError.BAD_SLOT),  # nothing registered there
    (9999, (997, 1000), RegError.BAD_SLOT),
])
def test_register_commit_errors_leave_the_table_unchanged(slot: int, fee: tuple[int, int],
                                                          code: RegError) -> None:
    t = PoolTable(capacity=16)
    t.add_pool(P[0], A, B, 10, 20)
    t.begin_eval()
    regs = PoolTableRegs(t)
    _stage(regs, slot, 1, 2, fee)
    regs.write(ADDR["pool_cmd"], 1)
    assert regs.last_error is code
    assert t.pending == 0 and t.begin_eval() == 0
    assert (t.read(0).reserve0, t.read(0).reserve1) == (10, 20)


def test_register_data_must_be_32_bit() -> None:
    regs = PoolTableRegs(PoolTable())
    with pytest.raises(ValueError, match="32-bit"):
        regs.write(ADDR["pool_data_0"], 1 << 32)
