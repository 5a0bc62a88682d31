#!/usr/bin/env python3
"""Generates the benchmark circuits (also used by the memory test).

  gen_circuits.py rc-ladder OUT.cir [--nodes 300] [--stop 20u]
  gen_circuits.py ring-osc OUT.cir [--stages 101] [--stop 20n]
"""
import argparse


def rc_ladder(nodes=300, stop="20u", step=None):
    step = step or "1n"
    lines = ["%d-node RC ladder, pulse input" % nodes,
             "V1 n0 0 PULSE(0 1 0 10n 10n 1u 2u)"]
    for i in range(1, nodes + 1):
        lines.append("R%d n%d n%d 100" % (i, i - 1, i))
        lines.append("C%d n%d 0 10p" % (i, i))
    lines += [".tran %s %s" % (step, stop), ".end"]
    return "\n".join(lines) + "\n"


def ring_osc(stages=101, stop="20n", step=None):
    step = step or "10p"
    lines = ["%d-stage CMOS ring oscillator (BSIM3)" % stages,
             "VDD vdd 0 DC 1.8",
             ".model nch nmos level=8 version=3.3.0 tox=4n vth0=0.45",
             ".model pch pmos level=8 version=3.3.0 tox=4n vth0=-0.45",
             ".subckt inv in out vdd",
             "MP out in vdd vdd pch w=2u l=0.18u",
             "MN out in 0 0 nch w=1u l=0.18u",
             "CL out 0 5f",
             ".ends"]
    for i in range(stages):
        lines.append("X%d s%d s%d vdd inv" % (i, i, (i + 1) % stages))
    lines += [".ic v(s0)=0", ".tran %s %s uic" % (step, stop), ".end"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["rc-ladder", "ring-osc"])
    ap.add_argument("out")
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--stages", type=int, default=101)
    ap.add_argument("--stop")
    ap.add_argument("--step")
    a = ap.parse_args()
    if a.kind == "rc-ladder":
        text = rc_ladder(a.nodes, a.stop or "20u", a.step)
    else:
        text = ring_osc(a.stages, a.stop or "20n", a.step)
    open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
