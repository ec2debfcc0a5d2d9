# ECGNet — two commands on a fresh clone: `make run` (main job) and `make test`.
#
# Data: $ECGNET_DATA (a PTB-XL folder in PhysioNet's layout) if set; otherwise, when the team's packed
# copy ../shared/ptbxl exists, it is materialised (and checksum-verified) into .cache/ptb-xl-1.0.1.
# Users elsewhere: `.venv/bin/ecgnet data download DIR` then `export ECGNET_DATA=DIR`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED := ../shared/ptbxl/materialize.py

export ECGNET_CACHE ?= $(abspath .cache/ecgnet)
ifeq ($(strip $(ECGNET_DATA)),)
  ifneq ($(wildcard $(SHARED)),)
    ECGNET_DATA := $(abspath .cache/ptb-xl-1.0.1)
    MATERIALIZE := 1
  endif
endif
export ECGNET_DATA

.PHONY: setup data run test test-fast reproduce comparison benchmarks bundle wheel clean

setup: $(VENV)/.installed

# torch first, pinned: here that takes the CPU wheel on disk instead of pulling CUDA packages.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

data: setup
ifdef MATERIALIZE
	$(BIN)/python $(SHARED) $(ECGNET_DATA)
endif
	@test -n "$(ECGNET_DATA)" || { echo "No PTB-XL folder: set ECGNET_DATA=DIR, or download it with '$(BIN)/ecgnet data download DIR'" >&2; exit 1; }

# The main job: evaluate on fold 10 (table + report) the single model with the best fold-9 macro AUC
# (distill_long_time, the default of predict/serve: long_time's network and recipe distilled from the greedy
# ensemble), the time-domain baseline, and the best fusion model of the modality study
# (intermediate fusion by concatenation of the four modalities, weighted BCE).
run: data
	$(BIN)/ecgnet evaluate --checkpoint runs/distill_long_time --split test
	$(BIN)/ecgnet evaluate --checkpoint runs/baseline_time --split test
	$(BIN)/ecgnet evaluate --checkpoint runs/intermediate_concat_weighted_bce --split test
	@echo "Viewer: run '$(BIN)/ecgnet serve' and open http://127.0.0.1:8000/ (see docs/viewer.md)"

# Tests that need the real data are skipped (with the reason) when no PTB-XL folder is available.
test: setup
ifdef MATERIALIZE
	$(BIN)/python $(SHARED) $(ECGNET_DATA)
endif
	$(BIN)/pytest -q

# The inner loop: the suite without the tests marked slow (@pytest.mark.slow, each over ~10 s on 2 cores).
test-fast: setup
ifdef MATERIALIZE
	$(BIN)/python $(SHARED) $(ECGNET_DATA)
endif
	$(BIN)/pytest -q -m "not slow"

# Retrain the committed baseline from scratch with its committed config (~10 min on 2 CPU cores).
reproduce: data
	$(BIN)/ecgnet train --config configs/baseline_time.yaml --runs-dir runs

# The multimodal comparison: train every config not yet in runs/ (hours on 2 CPU cores; minutes on a
# GPU), then write reports/comparison/comparison.{html,md,json} (superdiagnostic) and
# reports/comparison_all/ (the 71-statement `all` task) from the committed runs. Late-fusion runs come
# after their members: they only fit a combiner on fold 9.
GRID := frequency frequency_phase spectrogram metadata early intermediate_concat intermediate_gated \
        intermediate_attention late_average late_stacking late_stacking_time_frequency \
        late_stacking_time_spectrogram late_stacking_time_metadata late_stacking_no_metadata \
        intermediate_concat_weighted_bce intermediate_concat_focal intermediate_concat_oversample
ALL_GRID := all_time all_frequency all_spectrogram all_metadata all_late_stacking
comparison: data
	for c in baseline_time $(GRID) $(ALL_GRID); do \
	  test -f runs/$$c/model.safetensors || $(BIN)/ecgnet train -c configs/$$c.yaml || exit 1; done
	$(BIN)/ecgnet compare runs/baseline_time $(addprefix runs/,$(GRID)) --baseline runs/baseline_time \
	  --out reports/comparison --ablation-records 600 --explain-records 8
	$(BIN)/ecgnet compare $(addprefix runs/,$(ALL_GRID)) --baseline runs/all_time \
	  --out reports/comparison_all --ablation-records 0 --no-explain

benchmarks: data
	$(BIN)/python -m benchmarks.bench_model --checkpoint runs/baseline_time
	$(BIN)/python -m benchmarks.bench_convergence
	$(BIN)/python -m benchmarks.bench_cache

# Refresh the models shipped in the package (src/ecgnet/models_bundled/, see ecgnet.runs.bundled) from runs/.
bundle: setup
	$(BIN)/python -m ecgnet.runs.bundled runs src/ecgnet/models_bundled

# The sdist and the wheel, into dist/: the wheel built from the sdist (as `python -m build` does), the sdist from a
# clean copy of the sources: building in the checkout leaves build/ and src/ecgnet.egg-info, whose stale files (a
# module since deleted) would ship in the next build. The guides travel as in any install: MANIFEST.in puts docs/
# in the sdist, setup.py copies them into the package (ecgnet docs NAME).
wheel: setup
	rm -rf .cache/wheel-src && mkdir -p .cache/wheel-src dist
	cp -r src docs pyproject.toml setup.py MANIFEST.in README.md .cache/wheel-src/
	find .cache/wheel-src \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
	cd .cache/wheel-src && $(abspath $(BIN))/python -c "from setuptools import build_meta; build_meta.build_sdist('sdist')"
	$(BIN)/pip wheel --no-deps --no-build-isolation -w dist .cache/wheel-src/sdist/ecgnet-*.tar.gz
	cp .cache/wheel-src/sdist/ecgnet-*.tar.gz dist/
	rm -rf .cache/wheel-src

clean:
	rm -rf $(VENV) outputs .pytest_cache
