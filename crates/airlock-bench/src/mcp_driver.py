"""airlock-bench mcp-proxy: one client (the official MCP Python SDK) holding
several stdio sessions at once, calling the same read-only tool on each in
turn. stdin: {"sessions": {NAME: ARGV}, "calls": N, "tool": TOOL}. stdout:
{NAME: [nanoseconds of each call]}, the untimed first call left out."""

import asyncio
import json
import os
import sys
import time
from contextlib import AsyncExitStack

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main():
    config = json.load(sys.stdin)
    names = list(config["sessions"])
    times = {name: [] for name in names}
    async with AsyncExitStack() as stack:
        sessions = {}
        for name in names:
            argv = config["sessions"][name]
            params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
            read, write = await stack.enter_async_context(stdio_client(params))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            await session.list_tools()
            await session.call_tool(config["tool"], {})
            sessions[name] = session
        for i in range(config["calls"]):
            # Interleaved, the first side alternating.
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                t = time.perf_counter_ns()
                result = await sessions[name].call_tool(config["tool"], {})
                times[name].append(time.perf_counter_ns() - t)
                if result.is_error:
                    raise SystemExit(f"{name}: the call failed: {result.content}")
    print(json.dumps(times))


asyncio.run(main())
