"""Bar chart of testbed/bench's CSV: median forwarded Mpps per case, min-max
as error bars. Usage: bench-chart.py BENCH.csv OUT.png"""
import csv
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = {}
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f):
        rows.setdefault((r["case"], r["name"]), []).append(float(r["mpps"]))
cases = sorted(rows)
labels = [f"({c}) {n}" for c, n in cases]
med = [statistics.median(rows[k]) for k in cases]
lo = [m - min(rows[k]) for m, k in zip(med, cases)]
hi = [max(rows[k]) - m for m, k in zip(med, cases)]
colors = ["#1f77b4" if "xgate" in n else "#999999" for _, n in cases]
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.barh(labels, med, xerr=[lo, hi], color=colors, capsize=4)
for y, m in enumerate(med):
    ax.text(m + hi[y], y, f"  {m:.2f}", va="center")
ax.invert_yaxis()
ax.set_xlabel("forwarded Mpps (64-byte UDP, median, min-max)")
ax.set_title("gen ns -> router ns -> sink ns over veth, one forwarding core")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
