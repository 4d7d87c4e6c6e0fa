# make results    re-train from $(DATA), regenerate results/ and results/results.md (about 2 hours on 2 CPU cores)
# make benchmark  training throughput per backend -> benchmarks/results-<date>.txt
# make test       the test suite (minutes, no real data)
PYTHON ?= python
DATA ?= $(VAELAB_DATA_DIR)
DATA_ARG = $(if $(DATA),--data-dir $(DATA))

.PHONY: results results-table benchmark test
results:
	$(PYTHON) make_results.py $(DATA_ARG)
results-table:
	$(PYTHON) make_results.py $(DATA_ARG) --skip-training
benchmark:
	$(PYTHON) benchmarks/throughput.py
test:
	$(PYTHON) -m pytest -q
