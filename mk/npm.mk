# Test-only npm packages (spec/npm/package.json and its lock) that the specs of the core and of the rocks check
# against or run (make test, make test-hosts, the bench: a signer, servers and clients, OpenTelemetry's OTLP
# definitions; a rock's rocks/<rock>/rock.mk may say which are its own).  `npm ci` installs them when node_modules is missing
# or older than the lock; without npm it says so once and the specs that need them pend, naming what is missing.
NPM_DIR   := spec/npm
NPM_STAMP := $(NPM_DIR)/node_modules/.package-lock.json

$(NPM_STAMP): $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "npm ci in $(NPM_DIR) (test-only packages)"; \
	  cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.package-lock.json; \
	else echo "npm not found: the specs that need $(NPM_DIR)'s packages pend (Debian: nodejs, npm)"; fi

npm-deps: $(NPM_STAMP)
.PHONY: npm-deps
test test-hosts test-all: npm-deps
