# API server (and CPU worker) image. `npm ci` here has internet access, so the optional native
# TensorFlow backends install (without CUDA the GPU one fails to load and @tensorflow/tfjs-node is
# used); on machines without them the code falls back to WASM.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
RUN apt-get update && apt-get install -y --no-install-recommends wget && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json schema.graphql ./
COPY prisma ./prisma
COPY models ./models
EXPOSE 4000
CMD ["node", "dist/src/server.js"]
