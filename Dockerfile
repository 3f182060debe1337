# The llm-trader worker image (also runs the CLI verbs: start, setup, status...).
#   docker build -t llm-trader .
#   docker run --rm -e TEMPORAL_ADDRESS=host.docker.internal:7233 -v llm_user_data:/app/user_data llm-trader
# The command runs the JavaScript that `npm run build` makes in dist/app (esbuild; no TypeScript compiler at run time);
# the workflow bundle is built here once, so workers start fast.

# --- build: all dependencies (esbuild is a dev dependency), the build, then the dev dependencies removed
FROM node:20-slim AS build
WORKDIR /app

# dependencies first, for the layer cache; better-sqlite3 and the Temporal core bridge ship prebuilt binaries.
# --ignore-scripts: the project's own `prepare` (the build) needs the sources, copied below; the packages' install
# scripts run with `npm rebuild`
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && npm rebuild && npm cache clean --force

COPY bin ./bin
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
COPY tsconfig.json ./
# the workflow bundle must come from the same @temporalio/worker version that runs it: build it in the image
RUN node scripts/build.mjs --no-workflow-bundle \
  && node bin/llm-trader.js worker --write-bundle dist/workflow-bundle.js \
  && npm prune --omit=dev

# --- the image: production dependencies, the build, the sources it was built from (the workflow bundle's key)
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production

COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/src ./src
COPY --from=build /app/dist ./dist
COPY config ./config

# user_data/ (journal, paper ledger, logs) belongs on a volume; a new volume takes this folder's owner (node)
RUN mkdir -p user_data && chown -R node:node user_data
VOLUME ["/app/user_data"]
USER node

CMD ["bin/llm-trader", "worker", "--config", "/app/config/paper.json", "--bundle", "/app/dist/workflow-bundle.js"]
