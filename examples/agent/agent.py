"""A LangChain tool-calling agent, shaped like the support and coding agents agentguard
watches: its tools list, read and write files, run shell commands and call HTTP APIs.

Its model is whatever OpenAI-compatible endpoint AGENT_MODEL_URL names (the example's
replaying model server by default); nothing here knows the plan it is following.
"""
import json
import os
import subprocess
import sys
import urllib.request

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


@tool
def list_files(path: str) -> str:
    """List the entries of a directory."""
    return "\n".join(sorted(os.listdir(path)))


@tool
def read_file(path: str) -> str:
    """Read a text file."""
    with open(os.path.expanduser(path), errors="replace") as f:
        return f.read()[:20000]


@tool
def write_file(path: str, content: str, append: bool = False) -> str:
    """Write (or append to) a text file, creating its directory."""
    path = os.path.expanduser(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a" if append else "w") as f:
        f.write(content)
    return f"wrote {len(content)} bytes to {path}"


@tool
def run_shell(command: str) -> str:
    """Run a shell command and return its output."""
    p = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    return (p.stdout + p.stderr)[-8000:] + f"\n[exit {p.returncode}]"


@tool
def http_get(url: str) -> str:
    """GET a URL and return the body."""
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read(20000).decode(errors="replace")


@tool
def http_post(url: str, body: str) -> str:
    """POST a body to a URL and return the status."""
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return f"HTTP {r.status}"


def main():
    task = " ".join(sys.argv[1:]) or "Triage the open tickets and write a short report."
    model = ChatOpenAI(
        model="replay",
        base_url=os.environ.get("AGENT_MODEL_URL", "http://127.0.0.1:18081/v1"),
        api_key="not-needed-for-a-local-model",
        temperature=0,
        max_retries=0,
        timeout=30,
        streaming=os.environ.get("AGENT_STREAM") == "1",
    )
    agent = create_agent(model, [list_files, read_file, write_file, run_shell, http_get, http_post],
                         system_prompt="You are a support engineer's assistant. Use the tools.")
    result = agent.invoke({"messages": [("user", task)]}, {"recursion_limit": 100})
    calls = sum(len(getattr(m, "tool_calls", []) or []) for m in result["messages"])
    print(json.dumps({"tool_calls": calls, "answer": result["messages"][-1].content}))


if __name__ == "__main__":
    main()
