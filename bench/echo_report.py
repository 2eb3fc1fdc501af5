"""Print bench/echo.sh's results (bench/target/echo/results.txt) as markdown tables.

Each value is the median over the rounds. Two shrapnel servers run: `shrapnel` (a guarded
stack per connection coroutine) and `shrapnel (shared)` (every connection coroutine on the
shared run stack). A peer's cell also shows the ratios shrapnel / peer and
shrapnel (shared) / peer, in that order (below 1 means shrapnel's number is smaller:
better for times, CPU, system calls and memory, worse for req/s).
"""
import statistics
import sys


def parse(line):
    """`key=value` pairs; a `status=` value runs to the end of the line."""
    d = {}
    head, sep, status = line.partition(" status=")
    if sep:
        d["status"] = status.strip()
    for part in head.split():
        if "=" in part:
            k, v = part.split("=", 1)
            d[k] = v
    return d


def med(xs):
    return statistics.median(xs) if xs else None


def num(x, digits=3):
    if x is None:
        return "n/a"
    if abs(x) >= 10000:
        return f"{x / 1000:.0f}k"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


OURS = ("shrapnel", "shrapnel-shared")
LABEL = {"shrapnel-shared": "shrapnel (shared)"}
LEGEND = ("Peers' cells: value (shrapnel / peer, shrapnel (shared) / peer); "
          "below 1: shrapnel's number is smaller.")


def cell(x, ours, digits=3):
    """A peer's value with the ratio of each of ours (None where ours is missing)."""
    if x is None:
        return "n/a"
    if x == 0 or all(o is None for o in ours):
        return num(x, digits)
    ratios = " / ".join("–" if o is None else f"{o / x:.2f}×" for o in ours)
    return f"{num(x, digits)} ({ratios})"


lines = [l.strip() for l in open(sys.argv[1]) if l.strip()]
rows = [parse(l) for l in lines]
notes = [l for l in lines if l.startswith("skipped") or l.startswith("syscall_tool")]

servers = []
for r in rows:
    s = r.get("server")
    if s and s not in servers:
        servers.append(s)
for s in reversed(OURS):
    if s in servers:
        servers.remove(s)
        servers.insert(0, s)

load = [r for r in rows if "server" in r and "rps" in r]
calls = [r for r in rows if "server" in r and "syscalls" in r]
idle = [r for r in rows if "server" in r and "rss1_kib" in r]
failed = [l for l in lines if l.startswith("server=") and " failed" in l]

if load or idle:
    print(LEGEND)
    print()

if load:
    conns = sorted({int(r["conns"]) for r in load})
    print("| connections | server | req/s | p50 µs | p99 µs | server CPU µs/req "
          "| syscalls/req |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c in conns:
        stats = {}
        for s in servers:
            mine = [r for r in load if r["server"] == s and int(r["conns"]) == c]
            mc = [r for r in calls if r["server"] == s and int(r["conns"]) == c]
            stats[s] = {
                "rps": med([float(r["rps"]) for r in mine]),
                "p50": med([float(r["p50_us"]) for r in mine]),
                "p99": med([float(r["p99_us"]) for r in mine]),
                "cpu": med([float(r["cpu_us_per_req"]) for r in mine
                            if "cpu_us_per_req" in r]),
                "sys": med([float(r["syscalls"]) / float(r.get("syscall_requests",
                                                                r["requests"]))
                            for r in mc
                            if float(r.get("syscall_requests", r["requests"])) > 0
                            and float(r["syscalls"]) > 0]),
                "n": len(mine),
            }
        ours = [stats.get(o) if stats.get(o, {}).get("n") else {} for o in OURS]
        for s in servers:
            st = stats[s]
            label = LABEL.get(s, s)
            if st["n"] == 0:
                print(f"| {c} | {label} | failed | | | | |")
                continue
            if s in OURS:
                cells = [num(st["rps"]), num(st["p50"]), num(st["p99"]), num(st["cpu"]),
                         num(st["sys"])]
            else:
                cells = [cell(st[k], [o.get(k) for o in ours])
                         for k in ("rps", "p50", "p99", "cpu", "sys")]
            print(f"| {c} | {label} | " + " | ".join(cells) + " |")
    print()

if idle:
    print("| server | RSS per idle connection (KiB) | RSS with none (MiB) | held |")
    print("| --- | --- | --- | --- |")
    per = {}
    for s in servers:
        mine = [r for r in idle if r["server"] == s]
        if mine:
            per[s] = (med([(int(r["rss1_kib"]) - int(r["rss0_kib"])) / int(r["idle"])
                           for r in mine]),
                      med([int(r["rss0_kib"]) / 1024 for r in mine]), mine[0]["idle"])
    for s in servers:
        label = LABEL.get(s, s)
        if s not in per:
            print(f"| {label} | failed | | |")
            continue
        kib, base, held = per[s]
        value = num(kib) if s in OURS else cell(kib, [per.get(o, (None,))[0] for o in OURS])
        print(f"| {label} | {value} | {base:.1f} | {held} |")
    print()

spawn = [r for r in rows if "case" in r]
if spawn:
    print("| coroutines | runtime | spawn ms | total ms (incl. the 1 s sleep) "
          "| peak RSS MiB |")
    print("| --- | --- | --- | --- | --- |")
    errors = []  # long failure messages, printed in full under the table

    def short(why):
        if len(why) <= 100:
            return why
        if why not in errors:
            errors.append(why)
        tail = why[why.rfind(" after "):] if " after " in why else ""
        return f"{why[:80].rsplit(' ', 1)[0]} …{tail} [{errors.index(why) + 1}]"

    # `case=shrapnel guarded` holds a space: parse() split it, so match on the raw lines.
    raw = [l for l in lines if l.startswith("case=")]
    by = {}
    for l in raw:
        label = l[len("case="):l.index(" round=")]
        d = parse(l[l.index(" round="):])
        by.setdefault((int(d["n"]), label), []).append(d)
    order = ["shrapnel guarded", "shrapnel shared", "tokio"]
    for (n, label) in sorted(by, key=lambda k: (k[0], order.index(k[1])
                                                if k[1] in order else len(order))):
        runs = by[(n, label)]
        ok = [d for d in runs if "spawn_ms" in d]
        bad = [d["status"] for d in runs if "status" in d]
        if not ok:
            why = short(bad[0]) if bad else "no result"
            if len(set(bad)) > 1:
                why += f" (and {len(set(bad)) - 1} other errors)"
            print(f"| {n} | {label} | {why} | | |")
            continue
        note = f" ({len(bad)} of {len(runs)} runs failed: {short(bad[0])})" if bad else ""
        print(f"| {n} | {label} | {num(med([float(d['spawn_ms']) for d in ok]))}{note} "
              f"| {num(med([float(d['total_ms']) for d in ok]))} "
              f"| {num(med([float(d['peak_rss_mib']) for d in ok]))} |")
    print()
    for i, why in enumerate(errors):
        print(f"[{i + 1}] {why}")
        print()

for l in notes + failed:
    print(f"- {l}")
