# The llm-trader worker image (also runs the CLI verbs: start, setup, status...).
#   docker build -t llm-trader .
#   docker run --rm -e TEMPORAL_ADDRESS=host.docker.internal:7233 -v llm_user_data:/app/user_data llm-trader
# TypeScript runs through tsx (no build step); the workflow bundle is built here once, so workers start fast.
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production

# dependencies first, for the layer cache; better-sqlite3 and the Temporal core bridge ship prebuilt binaries
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY bin ./bin
COPY src ./src
COPY config ./config
COPY tsconfig.json ./

# the workflow bundle must come from the same @temporalio/worker version that runs it: build it in the image
RUN mkdir -p dist user_data \
  && node bin/llm-trader.js worker --write-bundle dist/workflow-bundle.js \
  && chown -R node:node user_data

# user_data/ (journal, paper ledger, logs) belongs on a volume; a new volume takes this folder's owner (node)
VOLUME ["/app/user_data"]
USER node

CMD ["node", "bin/llm-trader.js", "worker", "--config", "/app/config/paper.json", "--bundle", "/app/dist/workflow-bundle.js"]
