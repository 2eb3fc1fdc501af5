"""Print bench/echo.sh's results (bench/target/echo/results.txt) as markdown tables.

Each value is the median over the rounds. Two shrapnel servers run: `shrapnel` (a guarded
stack per connection coroutine) and `shrapnel (shared)` (every connection coroutine on the
shared run stack). A peer's cell also shows the ratios shrapnel / peer and
shrapnel (shared) / peer, in that order (below 1 means shrapnel's number is smaller:
better for times, CPU, system calls and memory, worse for req/s).

The results of `bench/echo.sh --cores N` (bench/target/echo/cores.txt) carry `cores=N`:
their table has a row per (cores, connections, server), a column with the load
generator's CPU use (percent of one CPU; it shares the server's CPUs when the machine has
no CPU left over), and a second table checks issue 12's targets at 2 cores. There the
shrapnel servers are `shrapnel` and `shrapnel (idle spin)` (each scheduler spins up to
30 µs before it blocks: `RuntimeConfig::idle_spin`), each checked against the targets.
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


OURS = ("shrapnel", "shrapnel-shared", "shrapnel-spin")
LABEL = {"shrapnel-shared": "shrapnel (shared)", "shrapnel-spin": "shrapnel (idle spin)"}
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
notes = list(dict.fromkeys(l for l in lines if l.startswith("skipped")
                           or l.startswith("syscall_tool") or l.startswith("placement")))

servers = []
for r in rows:
    s = r.get("server")
    if s and s not in servers:
        servers.append(s)
for s in reversed(OURS):
    if s in servers:
        servers.remove(s)
        servers.insert(0, s)
# Only the shrapnel servers that ran get a ratio (the --cores mode runs two).
OURS = tuple(o for o in OURS if o in servers) or OURS
LEGEND = ("Peers' cells: value (" + ", ".join(f"{LABEL.get(o, o)} / peer" for o in OURS)
          + "); below 1: shrapnel's number is smaller.")

load = [r for r in rows if "server" in r and "rps" in r]
calls = [r for r in rows if "server" in r and "syscalls" in r]
idle = [r for r in rows if "server" in r and "rss1_kib" in r]
failed = [l for l in lines if l.startswith("server=") and " failed" in l]

if load or idle:
    print(LEGEND)
    print()

def cores_of(r):
    return int(r["cores"]) if "cores" in r else None


by_cores = {}  # (cores, conns) -> server -> medians, for the targets below
if load:
    with_cores = any("cores" in r for r in load)
    keys = sorted({(cores_of(r) or 0, int(r["conns"])) for r in load})
    head = "| cores " if with_cores else ""
    load_col = "| load generator CPU % " if with_cores else ""
    print(f"{head}| connections | server | req/s | p50 µs | p99 µs | server CPU µs/req "
          f"| syscalls/req {load_col}|")
    print("| --- " * (7 + 2 * with_cores) + "|")
    for n, c in keys:
        stats = {}
        for s in servers:
            mine = [r for r in load if r["server"] == s and int(r["conns"]) == c
                    and (cores_of(r) or 0) == n]
            mc = [r for r in calls if r["server"] == s and int(r["conns"]) == c
                  and (cores_of(r) or 0) == n]
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
                "load": med([float(r["load_cpu_pct"]) for r in mine
                             if "load_cpu_pct" in r]),
                "n": len(mine),
            }
        by_cores[(n, c)] = stats
        ours = [stats.get(o) if stats.get(o, {}).get("n") else {} for o in OURS]
        first = f"| {n} | {c}" if with_cores else f"| {c}"
        for s in servers:
            st = stats[s]
            label = LABEL.get(s, s)
            if st["n"] == 0:
                print(f"{first} | {label} | failed | | | | |" + " |" * with_cores)
                continue
            if s in OURS:
                cells = [num(st["rps"]), num(st["p50"]), num(st["p99"]), num(st["cpu"]),
                         num(st["sys"])]
            else:
                cells = [cell(st[k], [o.get(k) for o in ours])
                         for k in ("rps", "p50", "p99", "cpu", "sys")]
            if with_cores:
                cells.append(num(st["load"]))
            print(f"{first} | {label} | " + " | ".join(cells) + " |")
    print()

# Issue 12's targets at 2 server cores: shrapnel's req/s ≥ 1.15× tokio's and ≥ 1.2× may's
# (both with 2 workers). Where the load generator shares the server's CPUs, the server
# CPU per request is the fair comparison: its row is peer's CPU/req over shrapnel's, against
# the same factor.
TARGETS = {"tokio": 1.15, "may": 1.2}
target_rows = []
for (n, c), stats in sorted(by_cores.items()):
    for mine in ("shrapnel", "shrapnel-spin"):
        if n != 2 or not stats.get(mine, {}).get("n"):
            continue
        ours = stats[mine]
        for peer, factor in TARGETS.items():
            theirs = stats.get(peer, {})
            if not theirs.get("n"):
                continue
            for what, r in [("req/s, shrapnel / peer", ours["rps"] / theirs["rps"]),
                            ("server CPU per request, peer / shrapnel",
                             theirs["cpu"] / ours["cpu"] if ours["cpu"] and theirs["cpu"]
                             else None)]:
                if r is None:
                    continue
                target_rows.append(
                    f"| {c} | {LABEL.get(mine, mine)} | {peer} ({n} workers) | {what} "
                    f"| {r:.2f}× | ≥ {factor}× | {'yes' if r >= factor else '**no**'} |")
if target_rows:
    print("| connections | shrapnel | peer | measure | shrapnel's advantage | target | met? |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in target_rows:
        print(row)
    print()

# The floors beside tokio: how far below tokio's CPU per request (and above its req/s) a
# server with no runtime at all gets, readiness (`epoll`) or completions (`uring`), in the
# same run. No runtime can beat its floor, so a target beyond the floor cannot be met on
# this machine and workload.
FLOORS = ("epoll", "uring")
floor_rows = []
for (n, c), stats in sorted(by_cores.items()):
    tokio = stats.get("tokio", {})
    if not tokio.get("n"):
        continue
    for floor in FLOORS:
        st = stats.get(floor, {})
        if not st.get("n") or not st["cpu"] or not tokio["cpu"]:
            continue
        cores = f"{n} | " if n else ""
        floor_rows.append(f"| {cores}{c} | {floor} | {st['cpu'] / tokio['cpu']:.2f}× "
                          f"| {st['rps'] / tokio['rps']:.2f}× |")
if floor_rows:
    with_cores = any(k[0] for k in by_cores)
    print("The floors against tokio (a server with no runtime; CPU below 1 and req/s above 1 "
          "are the floor's advantage):")
    print()
    print(("| cores " if with_cores else "") + "| connections | floor "
          "| server CPU per request, floor / tokio | req/s, floor / tokio |")
    print("| --- " * (4 + with_cores) + "|")
    for row in floor_rows:
        print(row)
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
