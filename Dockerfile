# syntax=docker/dockerfile:1
# The bot (`runbook start`, the default) or a worker (`docker run … worker`).
# Configuration: RUNBOOK_CONFIG (runbook.yaml, SSH key and known_hosts mounted read-only), REDIS_URL,
# and the secrets of .env.example from an env file.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 RUNBOOK_CONFIG=/etc/runbook/runbook.yaml
WORKDIR /app
RUN groupadd --system runbook && useradd --system --gid runbook --home-dir /app --shell /usr/sbin/nologin runbook
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER runbook
EXPOSE 3000
# Healthy when Redis answers and a worker of this container beats (both `start` and `worker` run one).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["node", "dist/cli.js", "health"]
# A 4 MB young generation: a worker that takes many runs to their gates stays near its idle memory
# (docs/engine.md); the old generation is not capped, so a large run still has the heap it needs.
ENTRYPOINT ["node", "--enable-source-maps", "--max-semi-space-size=4", "dist/cli.js"]
CMD ["start"]
