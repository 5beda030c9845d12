# Two commands matter: `make demo` and `make test`. Both set up the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared

.PHONY: setup test test-fast lint demo score bench package deploy clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

# The unit tier only (pure tests, under a minute); `make test` runs every tier.
test-fast: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m unit -q

demo: setup
	$(PY) -m chalicelib demo --serve

score: setup
	$(PY) $(SHARED)/eval/score.py $(SHARED)/corpus/dev

bench: setup
	$(PY) bench/extract.py --shared $(SHARED)
	$(PY) bench/ingest.py --shared $(SHARED)
	$(PY) bench/api.py
	$(PY) bench/plan.py
	$(PY) bench/worker.py --shared $(SHARED)
	$(PY) bench/cost.py
	$(PY) bench/hostile.py

# The deployable stage: build/STAGE/sam.json (Chalice's template merged with deploy/template.py's
# resources) and build/STAGE/deployment.zip (less what nothing runs: deploy/trim.py), checked by
# cfn-lint. No AWS account needed.
STAGE ?= dev
BUILD ?= build
package: setup
	rm -rf $(BUILD)/$(STAGE)
	$(PY) deploy/template.py $(STAGE) $(BUILD)/merge-$(STAGE).json
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(STAGE) \
		--merge-template $(BUILD)/merge-$(STAGE).json $(BUILD)/$(STAGE)
	$(PY) deploy/trim.py $(BUILD)/$(STAGE)/deployment.zip
	$(VENV)/bin/cfn-lint $(BUILD)/$(STAGE)/sam.json
	@du -b $(BUILD)/$(STAGE)/deployment.zip

# Deploy needs the AWS CLI, credentials, and an S3 bucket for the code (the zip is over 50 MB).
# PARAMS: template parameters, e.g. PARAMS="AlarmEmail=ops@example.com ApiKeyGeneration=2"
deploy: package
	@test -n "$(BUCKET)" || (echo "usage: make deploy STAGE=prod BUCKET=my-artifacts-bucket [PARAMS='AlarmEmail=…']"; exit 2)
	aws cloudformation package --template-file $(BUILD)/$(STAGE)/sam.json --s3-bucket $(BUCKET) \
		--output-template-file $(BUILD)/$(STAGE)/packaged.yaml
	aws cloudformation deploy --template-file $(BUILD)/$(STAGE)/packaged.yaml --stack-name chiptracker-$(STAGE) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
		$(if $(PARAMS),--parameter-overrides $(PARAMS))

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
