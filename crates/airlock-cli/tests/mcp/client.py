"""Drives `airlock mcp` with the official MCP Python SDK (`pip install mcp`).

Usage: client.py AIRLOCK_BINARY REPO RUN < STEPS_JSON

STEPS_JSON, on stdin, is a list of steps, run in order in one session:
  {"op": "list"}                                  -> the tools listed
  {"op": "call", "tool": NAME, "args": {...}}     -> the tool's result
Prints one JSON document: {"server": ..., "results": [...]}, one result per
step. A protocol error (a JSON-RPC error) is reported, not raised, so the
caller sees exactly what the server answered.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main():
    airlock, repo, run = sys.argv[1], sys.argv[2], sys.argv[3]
    steps = json.load(sys.stdin)
    params = StdioServerParameters(
        command=airlock,
        args=["-C", repo, "mcp", "--run", run],
        env=dict(os.environ),
    )
    results = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            for step in steps:
                if step["op"] == "list":
                    listed = await session.list_tools()
                    results.append({"tools": [dump(t) for t in listed.tools]})
                elif step["op"] == "call":
                    try:
                        result = await session.call_tool(step["tool"], step.get("args"))
                        results.append({"result": dump(result)})
                    except Exception as e:  # the SDK raises protocol errors
                        error = getattr(e, "error", None)
                        results.append(
                            {
                                "protocol_error": dump(error)
                                if error is not None
                                else {"message": str(e), "type": type(e).__name__}
                            }
                        )
                else:
                    raise SystemExit(f"unknown step {step!r}")
    print(json.dumps({"server": dump(init), "results": results}))


# A guard against a server that never answers, not a measurement.
asyncio.run(asyncio.wait_for(main(), 300))
