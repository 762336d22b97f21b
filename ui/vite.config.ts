// Fixed output names (no content hashes): the Rust binary embeds ui/dist/ by name
// (src/web/assets.rs) and serves them with ETags instead.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    cssCodeSplit: false,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/app-[name].js",
        assetFileNames: (info) => (info.name?.endsWith(".css") ? "assets/app.css" : "assets/[name][extname]"),
        inlineDynamicImports: true,
      },
    },
  },
});
