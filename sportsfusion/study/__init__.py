"""The paper's experiments as one command: `python -m sportsfusion.study {table1,transfer,
camera-motion,all} --out DIR [--preset smoke|quick|full]`.

presets.py      how big each experiment is (one dataclass per preset)
runner.py       one training run: reuse, resume or start it; its record (metrics, clips/s, cost)
experiments.py  the three experiments as plans of runs, and their results
findings.py     the paper's findings, each held / did not hold / inconclusive by one rule
plots.py        the PNG figures;  report.py  report.md and results.json
"""
