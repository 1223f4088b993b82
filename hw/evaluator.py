"""Price-delta evaluator arithmetic: exact Uniswap V2 ``getAmountOut`` / ``getAmountIn`` in gateware.

The first block of the gateware evaluator: the exact integer hop arithmetic of
:mod:`mevblade.control.engine.software.evaluator` (``get_amount_out`` /
``get_amount_in`` with per-pool fee ``fee_num / fee_den`` and the library's
reverts), bit-exact with it. The exact cycle optimum search (``optimal_cycle``) is
:class:`mevblade.hw.eval_search.EvalSearch`, a microcoded component with its own
(faster) multiplier, divider and square root; these units stay stand-alone blocks.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from mevblade.hw.eval_search import restoring_step

__all__ = ["AmountOp", "AmountRevert", "AmountRequest", "AmountResponse", "AmountUnit",
           "OUT_DIV_BITS", "IN_DIV_BITS", "DIGIT_BITS", "AMOUNT_DIV_RADIX_BITS", "AMOUNT_DIV_CHUNK",
           "HopLayout", "ClosedFormStart2"]

#: multiplier digit: one ``240 × 16``-bit partial product per cycle (DSP-mappable)
DIGIT_BITS = 16
#: quotient bits of getAmountOut: ``a·f·rOut // (rIn·d + a·f) <= rOut < 2**112``
OUT_DIV_BITS = 112
#: quotient bits of getAmountIn (numerator < 2**240, denominator >= 1)
IN_DIV_BITS = 240
#: quotient bits per cycle of AmountUnit's divider (chained restoring steps on 130 bits; 8 in
#: sessions 4-8, whose 32.9 ns cell-only path set the backrun unit's clock; session 9: 3, 8.9 ns,
#: below EvalSearch's clock — fmax proxy, cell delays only)
AMOUNT_DIV_RADIX_BITS = 3
#: carry-chain length of the divider steps' carry-select subtraction (130 bits: four chains)
AMOUNT_DIV_CHUNK = 33


def _div_steps(bits: int) -> int:
    """Divider cycles for a quotient bound of ``bits`` bits (rounded up to whole radix steps)."""
    return -(-bits // AMOUNT_DIV_RADIX_BITS)


class AmountOp(enum.Enum, shape=1):
    OUT = 0   #: getAmountOut(amount = amount in)
    IN = 1    #: getAmountIn(amount = amount out)


class AmountRevert(enum.Enum, shape=3):
    """Why the library would revert (``NONE``: the result is valid)."""
    NONE = 0
    INSUFFICIENT_INPUT_AMOUNT = 1
    INSUFFICIENT_OUTPUT_AMOUNT = 2
    INSUFFICIENT_LIQUIDITY = 3
    SUB_UNDERFLOW = 4        #: getAmountIn with amount_out > reserve_out
    DIVISION_BY_ZERO = 5     #: getAmountIn with amount_out == reserve_out


AmountRequest = data.StructLayout({
    "op": AmountOp,
    "amount": 112,
    "reserve_in": 112,
    "reserve_out": 112,
    "fee_num": 16,
    "fee_den": 16,
})

AmountResponse = data.StructLayout({
    "revert": AmountRevert,
    #: the amount (0 when reverting); getAmountIn can exceed 2**112 (tiny remaining reserve)
    "result": IN_DIV_BITS + 1,
})


class AmountUnit(wiring.Component):
    """Exact ``getAmountOut`` / ``getAmountIn``: a digit-serial multiplier and a restoring divider.

    ``getAmountOut(a, rIn, rOut) = (a·f·rOut) // (rIn·d + a·f)``;
    ``getAmountIn(b, rIn, rOut) = (rIn·b·d) // ((rOut − b)·f) + 1``
    (UniswapV2Library semantics with fee ``f/d``; reverts as in the software model:
    zero amount, zero reserve, ``b >= rOut``). Inputs are 112-bit reserves and
    amounts and 16-bit fees, so every numerator is below 2^240.

    Interface
    ---------
    ``i`` : ``In(stream.Signature(AmountRequest))`` — one request at a time.
    ``o`` : ``Out(stream.Signature(AmountResponse))`` — one response per request, in order.

    Datapath
    --------
    One multiply-accumulate step per cycle: ``acc += X · Y[16k+15:16k] << 16k`` with a
    240 × 16-bit partial product (on ECP5 that maps onto MULT18X18D blocks), so a
    112-bit operand takes 7 steps and a fee 1; beside it one 112 × 16 product
    (``rIn·d``, or ``(rOut − b)·f``) in the checks cycle. The quotient comes from a
    restoring divider with :data:`AMOUNT_DIV_RADIX_BITS` (3) chained radix-2 steps per
    cycle (130-bit carry-select subtractions), started ``OUT_DIV_BITS`` / ``IN_DIV_BITS``
    bits (rounded up to whole steps) from the end (the quotient is known to be below that
    bound, so the skipped leading steps would only produce zeros).

    Latency
    -------
    ``o.valid`` rises this many clock edges after the request's transfer:
    ``getAmountOut`` 1 (checks, ``a·f``, ``rIn·d``) + 7 (``a·f·rOut``) + 38 (divider, 114
    bits; the last step answers) = 46; ``getAmountIn`` 1 + 7 + 1 + 80 (240 bits) + 1 = 90;
    a revert 1 (:data:`LATENCY_OUT` etc.). Session 9 traded cycles for the clock: 27 / 42
    cycles at 8 quotient bits per cycle and a 32.9 ns cell-only path before, 46 / 90 at 8.9 ns
    now (fmax proxy): getAmountOut 889 → 408 ns. (One quotient bit per cycle until
    session 4: 125 / 252.)

    Throughput
    ----------
    One request per latency (not pipelined); instantiate several units for more.

    Back-pressure
    -------------
    The response is held until taken; ``i.ready`` is high only while idle.
    """

    i: In(stream.Signature(AmountRequest))
    o: Out(stream.Signature(AmountResponse))

    #: cycles from the request's transfer to the first cycle of ``o.valid`` (checked in the tests)
    LATENCY_OUT = 1 + 7 + _div_steps(OUT_DIV_BITS)
    LATENCY_IN = 1 + 7 + 1 + _div_steps(IN_DIV_BITS) + 1
    LATENCY_REVERT = 1

    def elaborate(self, platform):
        m = Module()
        req = Signal(AmountRequest)
        acc = Signal(256)          # multiply accumulator (products < 2**240)
        x = Signal(240)            # multiplicand
        y = Signal(112)            # multiplier, consumed 16 bits per step
        steps = Signal(range(8))   # digits left
        w = Signal(128)            # a*f of getAmountOut
        small = Signal(128)        # rIn*d (getAmountOut) or (rOut-b)*f (getAmountIn), from the CHECK cycle
        num = Signal(240)
        den = Signal(129)          # rIn*d + a*f < 2**129; (rOut-b)*f < 2**128
        rem = Signal(129)          # < den
        quo = Signal(IN_DIV_BITS)
        count = Signal(range(_div_steps(IN_DIV_BITS) + 1))
        resp = Signal(AmountResponse)
        o_valid = Signal()
        m.d.comb += [self.o.payload.eq(resp), self.o.valid.eq(o_valid)]
        with m.If(self.o.ready):
            m.d.sync += o_valid.eq(0)

        partial = Signal(256)
        m.d.comb += partial.eq(x * y[:DIGIT_BITS])
        # the second (112 x 16) product of either operation, beside the digit-serial one
        is_out = req.op == AmountOp.OUT
        small_x = Signal(112)
        small_y = Signal(16)
        m.d.comb += [small_x.eq(Mux(is_out, req.reserve_in, req.reserve_out - req.amount)),
                     small_y.eq(Mux(is_out, req.fee_den, req.fee_num))]

        def mac_step():
            # acc += x * digit << 16*(digit index); shifting x instead of the digit keeps one multiplier
            return [acc.eq(acc + partial), x.eq(x << DIGIT_BITS), y.eq(y >> DIGIT_BITS), steps.eq(steps - 1)]

        def start_mul(xv, yv, digits):
            return [acc.eq(0), x.eq(xv), y.eq(yv), steps.eq(digits)]

        def respond(revert, result=0):
            return [resp.revert.eq(revert), resp.result.eq(result), o_valid.eq(1)]

        def start_div(n, d, bits):
            # restoring division that skips the leading (zero) quotient bits: rem = n >> bits
            bits = _div_steps(bits) * AMOUNT_DIV_RADIX_BITS
            return [num.eq(n << (240 - bits)), rem.eq(n >> bits), den.eq(d), quo.eq(0),
                    count.eq(bits // AMOUNT_DIV_RADIX_BITS)]

        # AMOUNT_DIV_RADIX_BITS chained restoring steps per cycle: 2*rem + next numerator bit each
        r_c, q_c, n_c = rem, quo, num
        for k in range(AMOUNT_DIV_RADIX_BITS):
            r_c, ge = restoring_step(m, r_c, n_c[239], den, AMOUNT_DIV_CHUNK, f"div{k}")
            q_n = Signal(IN_DIV_BITS, name=f"quo_{k}")
            m.d.comb += q_n.eq(Cat(ge, q_c))
            q_c, n_c = q_n, n_c << 1
        div_rem, div_quo, div_num = r_c, q_c, n_c[:240]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(~o_valid | self.o.ready)
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += req.eq(self.i.payload)
                    # getAmountOut's first product a*f, taken in CHECK
                    m.d.sync += [x.eq(self.i.payload.amount), y.eq(self.i.payload.fee_num)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                zero_liq = (req.reserve_in == 0) | (req.reserve_out == 0)
                m.d.sync += small.eq(small_x * small_y)
                with m.If(req.op == AmountOp.OUT):
                    with m.If(req.amount == 0):
                        m.d.sync += respond(AmountRevert.INSUFFICIENT_INPUT_AMOUNT)
                        m.next = "IDLE"
                    with m.Elif(zero_liq):
                        m.d.sync += respond(AmountRevert.INSUFFICIENT_LIQUIDITY)
                        m.next = "IDLE"
                    with m.Else():
                        # w = a*f; num = w*rOut next
                        m.d.sync += w.eq(partial)
                        m.d.sync += start_mul(partial, req.reserve_out, 7)
                        m.next = "OUT_NUM"
                with m.Else():
                    with m.If(req.amount == 0):
                        m.d.sync += respond(AmountRevert.INSUFFICIENT_OUTPUT_AMOUNT)
                        m.next = "IDLE"
                    with m.Elif(zero_liq):
                        m.d.sync += respond(AmountRevert.INSUFFICIENT_LIQUIDITY)
                        m.next = "IDLE"
                    with m.Elif(req.amount > req.reserve_out):
                        m.d.sync += respond(AmountRevert.SUB_UNDERFLOW)
                        m.next = "IDLE"
                    with m.Elif(req.amount == req.reserve_out):
                        m.d.sync += respond(AmountRevert.DIVISION_BY_ZERO)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += start_mul(req.reserve_in, req.amount, 7)
                        m.next = "IN_NUM1"
            # ---- getAmountOut: num = w*rOut; den = rIn*d + w ------------------------------
            with m.State("OUT_NUM"):
                m.d.sync += mac_step()
                with m.If(steps == 1):
                    m.d.sync += start_div((acc + partial)[:240], small + w, OUT_DIV_BITS)
                    m.next = "DIV"
            # ---- getAmountIn: num = (rIn*b)*d; den = (rOut-b)*f ---------------------------
            with m.State("IN_NUM1"):
                m.d.sync += mac_step()
                with m.If(steps == 1):
                    m.d.sync += start_mul(acc + partial, req.fee_den, 1)
                    m.next = "IN_NUM2"
            with m.State("IN_NUM2"):
                m.d.sync += start_div(partial[:240], small, IN_DIV_BITS)
                m.next = "DIV"
            # ---- shared divider; getAmountOut responds with its last step ----------------------
            with m.State("DIV"):
                m.d.sync += [rem.eq(div_rem), quo.eq(div_quo), num.eq(div_num), count.eq(count - 1)]
                with m.If(count == 1):
                    with m.If(req.op == AmountOp.OUT):
                        m.d.sync += respond(AmountRevert.NONE, div_quo)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.sync += respond(AmountRevert.NONE, quo + 1)
                m.next = "IDLE"
        return m


#: One V2 hop as the evaluator sees it (reserves oriented for the trade direction).
HopLayout = data.StructLayout({
    "reserve_in": 112,
    "reserve_out": 112,
    "fee_num": 16,
    "fee_den": 16,
})


class ClosedFormStart2(wiring.Component):
    """``closed_form_start`` of a 2-hop cycle: ``max(1, (isqrt(N·M) − M) // K)``, or 0 if ``N <= M``.

    The continuous optimum of the cycle, exactly as the software evaluator's step 3
    computes it: the hops compose as Möbius maps ``x -> n·x / (m + k·x)`` with
    ``n = f·rOut``, ``m = d·rIn``, ``k = f``, giving ``N = n1·n2``, ``M = m1·m2``,
    ``K = m2·k1 + n1·k2``; the integer square root is taken of the **full** 512-bit
    product ``N·M`` (never divided first), then one division by ``K``.

    Interface
    ---------
    ``i`` : ``In(stream.Signature(ArrayLayout(HopLayout, 2)))`` — hop 0 takes the amount.
    ``o`` : ``Out(stream.Signature(256))`` — ``x0`` (0: nothing is profitable).

    Datapath
    --------
    One 256 × 16-bit multiplier used digit-serially, most significant digit first
    (``acc = acc·2^16 + X·digit``), a 512-bit accumulator; a radix-4 restoring
    integer square root (one result bit per cycle, 256 cycles); a radix-2
    restoring divider (256 cycles).

    Latency
    -------
    :data:`LATENCY` cycles from the request's transfer to ``o.valid`` when ``N > M``
    (fixed; fewer when ``N <= M``).

    Throughput
    ----------
    One request per latency. Back-pressure: the result is held until taken.
    """

    #: products: 4×1 (n, m) + 8 + 8 (N, M) + 1 + 1 (K) + 16 (N·M) steps, + sqrt 256 + div 256 + control
    LATENCY = 2 + 4 + 8 + 8 + 2 + 1 + 16 + 1 + 256 + 1 + 256 + 1

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(HopLayout, 2))),
            "o": Out(stream.Signature(256)),
        })

    def elaborate(self, platform):
        m = Module()
        h = Signal(data.ArrayLayout(HopLayout, 2))
        # multiplier: acc = acc << 16 + x * digit, digits of y from the top
        acc = Signal(512)
        x = Signal(256)
        y = Signal(256)
        steps = Signal(range(17))
        partial = Signal(272)
        m.d.comb += partial.eq(x * y[256 - DIGIT_BITS:])
        n1, n2, m1, m2 = (Signal(128, name=nm) for nm in ("n1", "n2", "m1", "m2"))
        big_n, big_m = Signal(256), Signal(256)
        big_k = Signal(146)
        # isqrt / divider state
        work = Signal(512)
        rem = Signal(260)
        root = Signal(256)
        cnt = Signal(range(257))
        o_valid = Signal()
        result = Signal(256)
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(result)]
        with m.If(self.o.ready):
            m.d.sync += o_valid.eq(0)

        def mul(xv, yv, digits):
            return [acc.eq(0), x.eq(xv), y.eq(yv << (256 - DIGIT_BITS * digits)), steps.eq(digits)]

        def mac():
            return [acc.eq((acc << DIGIT_BITS) + partial), y.eq(y << DIGIT_BITS), steps.eq(steps - 1)]

        def seq(state, nxt, capture, then=None):
            # run the multiply started by the previous state; on its last step store and go on
            with m.State(state):
                m.d.sync += mac()
                with m.If(steps == 1):
                    m.d.sync += capture(((acc << DIGIT_BITS) + partial)[:512])
                    if then is not None:
                        m.d.sync += then
                    m.next = nxt

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(~o_valid | self.o.ready)
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += h.eq(self.i.payload)
                    m.next = "N1"
            with m.State("N1"):
                m.d.sync += mul(h[0].reserve_out, h[0].fee_num, 1)
                m.next = "N1W"
            seq("N1W", "N2W", lambda v: n1.eq(v), mul(h[1].reserve_out, h[1].fee_num, 1))
            seq("N2W", "M1W", lambda v: n2.eq(v), mul(h[0].reserve_in, h[0].fee_den, 1))
            seq("M1W", "M2W", lambda v: m1.eq(v), mul(h[1].reserve_in, h[1].fee_den, 1))
            seq("M2W", "BN", lambda v: m2.eq(v))
            with m.State("BN"):
                m.d.sync += mul(n1, n2, 8)
                m.next = "BNW"
            seq("BNW", "BMW", lambda v: big_n.eq(v), mul(m1, m2, 8))
            seq("BMW", "K1W", lambda v: big_m.eq(v), mul(m2, h[0].fee_num, 1))
            seq("K1W", "K2W", lambda v: big_k.eq(v), mul(n1, h[1].fee_num, 1))
            seq("K2W", "CMP", lambda v: big_k.eq(big_k + v))
            with m.State("CMP"):
                with m.If(big_n <= big_m):
                    m.d.sync += [result.eq(0), o_valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += mul(big_n, big_m, 16)
                    m.next = "PW"
            seq("PW", "SQ0", lambda v: work.eq(v))
            with m.State("SQ0"):
                m.d.sync += [rem.eq(0), root.eq(0), cnt.eq(256)]
                m.next = "SQRT"
            with m.State("SQRT"):
                # radix-4 restoring square root: bring down two bits, try (4·root + 1)
                r2 = Cat(work[510:512], rem)
                trial = Cat(Const(1, 1), Const(0, 1), root)
                ge = r2 >= trial
                m.d.sync += [
                    rem.eq(Mux(ge, r2 - trial, r2)),
                    root.eq(Cat(ge, root)),
                    work.eq(work << 2),
                    cnt.eq(cnt - 1),
                ]
                with m.If(cnt == 1):
                    m.next = "SUB"
            with m.State("SUB"):
                # root = isqrt(N·M) >= M since N > M; dividend = root - M
                m.d.sync += [work.eq(root - big_m), rem.eq(0), root.eq(0), cnt.eq(256)]
                m.next = "DIV"
            with m.State("DIV"):
                r2 = Cat(work[255], rem)
                ge = r2 >= big_k
                m.d.sync += [
                    rem.eq(Mux(ge, r2 - big_k, r2)),
                    root.eq(Cat(ge, root)),
                    work.eq(work << 1),
                    cnt.eq(cnt - 1),
                ]
                with m.If(cnt == 1):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.sync += [result.eq(Mux(root == 0, 1, root)), o_valid.eq(1)]
                m.next = "IDLE"
        return m

