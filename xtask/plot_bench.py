#!/usr/bin/env python3
"""Draws `cargo xtask bench` results (JSON, argv[1]) as a PNG (argv[2])."""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
r = json.load(open(sys.argv[1]))
metrics = [("udp_64b_pps", "UDP 64B pps\n(higher is better)"), ("tcp_gbps", "TCP Gbit/s\n(higher is better)"), ("rr_latency_us", "RR latency us\n(lower is better)")]
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
colors = {"kernel": "#999999", "vtep": "#d62728", "vtep-xdp": "#ff7f0e", "floor": "#2ca02c", "direct": "#1f77b4"}
for ax, (m, title) in zip(axes, metrics):
    names = [n for n in ["kernel", "vtep", "vtep-xdp", "floor", "direct"] if n in r[m]]
    vals = [r[m][n] for n in names]
    bars = ax.bar(names, vals, color=[colors[n] for n in names])
    for b, v in zip(bars, vals):
        ax.annotate(f"{v:,.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=9)
    ax.set_title(title)
fig.suptitle(f"vtep (TC, and XDP decap) vs kernel vxlan + bridge vs the floor vs direct veth (median of {r['rounds']} interleaved rounds); prog_ns decap {r['prog_ns']['decap']:.0f}, XDP decap {r['prog_ns'].get('xdp_decap', float('nan')):.0f}, encap {r['prog_ns']['encap']:.0f}")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
