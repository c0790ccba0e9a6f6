import { useEffect, useState } from "react";
import { call, on, onState, type ConnectionState } from "wszero";

/** The messages the server sends, by op. */
interface CountMessage {
  count: number;
}

/** useConnection follows the connection's state, for the badge. */
function useConnection(): ConnectionState {
  const [state, setState] = useState<ConnectionState>("connecting");
  useEffect(() => onState((s) => setState(s)), []);
  return state;
}

export function App() {
  const state = useConnection();
  const [count, setCount] = useState<number | null>(null);
  const [error, setError] = useState("");

  // on() returns its own unsubscribe function: exactly what useEffect wants.
  useEffect(() => on<CountMessage>("count", (msg) => setCount(msg.count)), []);

  async function add(by: number) {
    try {
      setError("");
      const total = await call<number>("add", { by });
      setCount(total);
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return (
    <main style={{ font: "18px system-ui, sans-serif", maxWidth: "30rem", margin: "2rem auto" }}>
      <h1>Shared counter</h1>
      <p>
        Connection: <strong id="state">{state}</strong>
      </p>
      <p>
        Everyone sees the same count: <strong id="count">{count ?? "…"}</strong>
      </p>
      <button id="plus" onClick={() => add(1)}>
        +1
      </button>{" "}
      <button id="big" onClick={() => add(1000)}>
        +1000 (too many)
      </button>
      {error && (
        <p id="error" style={{ color: "#b00" }}>
          {error}
        </p>
      )}
    </main>
  );
}
