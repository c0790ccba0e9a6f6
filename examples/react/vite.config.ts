import { defineConfig } from "vite";

// In development (npm run dev), Vite serves the page and forwards the
// WebSocket endpoint to the Go server on port 8000 (WSZERO_SERVER names
// another, like ws://127.0.0.1:9000), so the page's default address (/ws)
// just works. npm run build writes dist/, which main.go serves.
export default defineConfig({
  esbuild: { jsx: "automatic" },
  server: {
    proxy: { "/ws": { target: process.env.WSZERO_SERVER || "ws://localhost:8000", ws: true } },
  },
});
