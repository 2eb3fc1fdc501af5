#!/usr/bin/env python3
"""Flash and RAM use of the Cortex-M example, and how much of its code is shrapnel-core.

Usage: size_report.py ELF CORE_SRC_DIR [--max-core-kib N]

Reads the ELF with arm-none-eabi-size, -nm and -objdump (binutils-arm-none-eabi; override
with $SIZE, $NM, $OBJDUMP). Each byte of .text is attributed to shrapnel-core when

- it lies in a function whose (demangled) name is in `shrapnel_core::` -- the core's own
  functions and the generic ones instantiated for the example (`Fifo<u32>::pop`); std code
  inlined into them counts as theirs, since the core is what pulls it in, but the example's
  own code inlined into them (a coroutine's closure inside `BodyState<F, T>::run`) is the
  example's; or
- the line table places it in a file under CORE_SRC_DIR: core code that LTO inlined into the
  example's functions (`event_loop` into `main`, `sleep` into a coroutine body).

Everything else is grouped by the function's crate. With --max-core-kib, exits 1 when the
core's share is larger.
"""

import bisect
import collections
import os
import re
import subprocess
import sys


def tool(env, default):
    return os.environ.get(env, default)


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def sections(elf):
    """Section name -> size, from `size -A`."""
    out = {}
    for line in run(tool("SIZE", "arm-none-eabi-size"), "-A", elf).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def text_symbols(elf):
    """(start, end, demangled name) of every function, sorted, Thumb bit cleared."""
    syms = []
    out = run(tool("NM", "arm-none-eabi-nm"), "-C", "-S", "--defined-only", elf)
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            start = int(parts[0], 16) & ~1
            syms.append((start, start + int(parts[1], 16), parts[3]))
    syms.sort()
    return syms


def line_rows(elf):
    """Sorted (address, file or None): the file each address range of code came from;
    None marks the end of a sequence."""
    out = run(tool("OBJDUMP", "arm-none-eabi-objdump"), "--dwarf=decodedline", elf)
    rows, current = [], None
    for line in out.splitlines():
        if line.endswith(":") and not line.startswith(" ") and "/" in line:
            current = line[:-1]
            continue
        parts = line.split()
        if current is None or len(parts) < 3 or not parts[2].startswith("0x"):
            continue
        addr = int(parts[2], 16)
        rows.append((addr, None if parts[1] == "-" else current))
    rows.sort(key=lambda r: r[0])
    return rows


def crate_of(name):
    if "shrapnel_core::" in name:
        return "shrapnel-core"
    if (
        "shrapnel_cortex_m" in name
        or name in ("main", "__cortex_m_rt_main")
        or "{{vtable.shim}}" in name  # the coroutine bodies (closures) of the demo
    ):
        return "example (demo code)"
    if "linked_list_allocator" in name or "spinning_top" in name:
        return "linked_list_allocator"
    if "cortex_m" in name or name in ("Reset", "DefaultHandler_", "HardFault_", "SysTick"):
        return "cortex-m, -rt, -semihosting"
    if "core::fmt" in name or "core::panicking" in name or "core::str" in name:
        return "Rust core: fmt, panics"
    if "core::slice::sort" in name:
        return "Rust core: slice sort"
    if "compiler_builtins" in name or name.startswith("__aeabi") or name.startswith("__rustc"):
        return "compiler builtins (memcpy, u64 division)"
    if "alloc::" in name:
        return "Rust alloc: collections"
    return "other"


def core_module(name, core_src=None):
    """The core's top-level module of a function name, or of a source path under core_src."""
    if core_src is not None:
        rel = os.path.relpath(os.path.realpath(name), core_src)
        return os.path.splitext(rel.split(os.sep)[0])[0]
    m = re.search(r"shrapnel_core::(\w+)", name)
    return m.group(1) if m else "other"


def is_example(path, example_src, core_src):
    """The example's own sources. Line tables name files relative to each crate's
    directory (`src/main.rs`), so a relative path counts as the example's only when the
    example has that file and the core does not (a `src/lib.rs` stays the core's)."""
    if os.path.isabs(path):
        return os.path.realpath(path).startswith(example_src)
    example_dir = os.path.dirname(example_src.rstrip(os.sep))
    core_dir = os.path.dirname(core_src.rstrip(os.sep))
    return os.path.exists(os.path.join(example_dir, path)) and not os.path.exists(
        os.path.join(core_dir, path)
    )


def main():
    args = sys.argv[1:]
    limit = None
    if "--max-core-kib" in args:
        i = args.index("--max-core-kib")
        limit = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    elf, core_src = args[0], os.path.realpath(args[1]) + os.sep
    repo = os.path.dirname(os.path.dirname(core_src.rstrip(os.sep)))
    example_src = os.path.join(repo, "examples", "cortex-m", "src") + os.sep

    sec = sections(elf)
    flash = sec.get(".vector_table", 0) + sec.get(".text", 0) + sec.get(".rodata", 0)
    flash += sec.get(".data", 0)
    ram = sec.get(".data", 0) + sec.get(".bss", 0) + sec.get(".uninit", 0)
    print(
        f"flash: {flash} B ({flash / 1024:.1f} KiB): .vector_table {sec.get('.vector_table', 0)}"
        f" + .text {sec.get('.text', 0)} + .rodata {sec.get('.rodata', 0)}"
        f" + .data {sec.get('.data', 0)}"
    )
    print(
        f"RAM:   {ram} B ({ram / 1024:.1f} KiB) static: .data {sec.get('.data', 0)}"
        f" + .bss {sec.get('.bss', 0)} (the heap is in .bss; the main stack gets the rest)"
    )

    rows = line_rows(elf)
    starts = [r[0] for r in rows]
    by_crate = collections.Counter()
    by_module = collections.Counter()
    arch = 0
    for start, end, name in text_symbols(elf):
        crate = crate_of(name)
        if crate == "shrapnel-core":
            # A generic core function instantiated for a coroutine body (`BodyState<F, T>::run`)
            # has the example's closure inlined into it: those bytes are the example's (all
            # of a body's bytes whose lines are not the core's: the closure and what it
            # inlined, as they were when the closure ran from a `FnOnce` vtable shim).
            mine = 0
            i = max(bisect.bisect_right(starts, start) - 1, 0)
            addr = start
            while addr < end:
                nxt = starts[i + 1] if i + 1 < len(starts) else end
                nxt = min(max(nxt, addr + 1), end)
                path = rows[i][1] if rows and rows[i][0] <= addr else None
                body = "coro::BodyState<" in name
                if path and (
                    is_example(path, example_src, core_src)
                    or (body and not os.path.realpath(path).startswith(core_src)
                        and not (not os.path.isabs(path)
                                 and os.path.exists(os.path.join(os.path.dirname(core_src.rstrip(os.sep)), path))))
                ):
                    by_crate["example (demo code)"] += nxt - addr
                else:
                    mine += nxt - addr
                addr = nxt
                i += 1
            by_crate[crate] += mine
            by_module[core_module(name)] += mine
            if "shrapnel_core::arch::" in name:
                arch += mine
            continue
        # Split the function by the line table: core code inlined into it is the core's.
        i = max(bisect.bisect_right(starts, start) - 1, 0)
        addr = start
        while addr < end:
            nxt = starts[i + 1] if i + 1 < len(starts) else end
            nxt = min(max(nxt, addr + 1), end)
            path = rows[i][1] if rows and rows[i][0] <= addr else None
            if path and os.path.realpath(path).startswith(core_src):
                by_crate["shrapnel-core"] += nxt - addr
                by_module[core_module(path, core_src)] += nxt - addr
            else:
                by_crate[crate] += nxt - addr
            addr = nxt
            i += 1

    total = sum(by_crate.values())
    print(f".text by origin ({total} B in functions):")
    for crate, size in by_crate.most_common():
        print(f"  {crate:42} {size:6} B  {100 * size / max(total, 1):4.1f}%")
    modules = ", ".join(f"{m} {s}" for m, s in by_module.most_common())
    print(f"  shrapnel-core by module: {modules}")
    core = by_crate["shrapnel-core"]
    verdict = ""
    if limit is not None:
        verdict = "within" if core <= limit * 1024 else "OVER"
        verdict = f": {verdict} the {limit:g} KiB budget"
    print(
        f"shrapnel-core .text (scheduler, timers, sync, where_all, context switch "
        f"{arch} B): {core} B = {core / 1024:.1f} KiB{verdict}"
    )
    if limit is not None and core > limit * 1024:
        sys.exit(1)


if __name__ == "__main__":
    main()
