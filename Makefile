# daa-bench: `make help` lists the targets. Each target installs what it needs first.
SHELL := /bin/bash
PYTHON_BIN ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Users get the default PyTorch build for their platform: on most Linux machines the CUDA build, a
# download of several GB. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu takes the CPU-only
# build instead (pip's --index-url, for the torch step only). CI sets TORCH_SPEC to the CPU build it
# has on disk.
TORCH_SPEC ?= torch>=2.5
TORCH_INDEX_URL ?=
DATA_ROOT ?= data
MODELS_ROOT ?= models
RESULTS ?= results
DEVICE ?= auto
PRECISION ?= fp32
# Make splits file lists at spaces: a folder with a space in its name would be cut in two (and the
# pieces created as stray folders), so such a folder is refused before anything runs.
$(foreach v,DATA_ROOT MODELS_ROOT RESULTS VENV,$(if $(filter-out 1,$(words $($(v)))),\
	$(error $(v)="$($(v))": make cannot pass a path with spaces safely; use a path without spaces or a symbolic link to it)))
EVAL := $(PY) -m bench eval --data-root $(DATA_ROOT) --device $(DEVICE) --precision $(PRECISION)

.PHONY: help install test demo download download-coco download-f30k download-checkpoints \
	reproduce-all report bench bench-gpu gpu-check gpu-wheels

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' -v results='$(RESULTS)' '{gsub(/\$$\(RESULTS\)/, results, $$2); printf "  %-24s %s\n", $$1, $$2}'

# Exact versions: constraints.txt holds what the suite and the published figures were obtained with
# (Python 3.11); make install installs with them. CONSTRAINTS= (empty) opts out and lets pip pick the newest
# versions pyproject.toml allows; a TORCH_SPEC you set replaces the file's torch pin.
CONSTRAINTS ?= constraints.txt
keep_torch_pin = $(filter file default,$(origin TORCH_SPEC))
cpu_build = (the CPU build: a download of about 200 MB, 0.8 GB installed)
cuda_build = (the default build, on most Linux machines the CUDA one: about 3 GB of downloads, a .venv of about 6 GB;\
 TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu takes the CPU build instead)
torch_source = $(if $(TORCH_INDEX_URL), from $(TORCH_INDEX_URL) $(if $(findstring /cpu,$(TORCH_INDEX_URL)),$(cpu_build)),\
 $(cuda_build))
torch_index = $(if $(TORCH_INDEX_URL),--index-url "$(TORCH_INDEX_URL)")
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	@echo "install 1/4: virtual environment $(VENV) ($(PYTHON_BIN); nothing to download)"
	@$(PYTHON_BIN) -m venv $(VENV)
	@$(if $(CONSTRAINTS),grep -v '$(if $(keep_torch_pin),^#,^torch==)' $(CONSTRAINTS),true) > $(VENV)/constraints.txt
	@echo "install 2/4: upgrading pip (a few MB)"
	@$(PY) -m pip install -q --upgrade pip
	@echo "install 3/4: $(TORCH_SPEC)$(if $(CONSTRAINTS), pinned by $(CONSTRAINTS))$(torch_source)"
	@$(PY) -m pip install --progress-bar on "$(TORCH_SPEC)" -c $(VENV)/constraints.txt $(torch_index)
	@echo "install 4/4: daa-bench (editable) with numpy, scipy, pandas, scikit-learn, nltk, matplotlib, pytest, ruff\
 (about 0.7 GB installed)"
	@$(PY) -m pip install -q -c $(VENV)/constraints.txt -e '.[test]'
	@touch $@

install: $(VENV)/.installed ## create .venv and install daa-bench with its test tools

test: install ## lint (ruff), then the test suite (CPU, generated data; 7 min measured on 2 idle cores)
	@echo "test: ruff, then about 790 tests: 7 minutes measured on 2 idle cores (26 with the cores shared,\
	 load 8); the 15 slowest are listed at the end"
	$(PY) -m ruff check .
	$(PY) -m pytest --durations=15

# ---- issue 3: reproduce the paper's tables with the released DAA checkpoints; summarise ----
# Run <dataset>_<model>_<protocol> writes $(RESULTS)/daa_<dataset>_<model>_<protocol>.{json,csv}.
# Your own checkpoint instead (issue 13): CHECKPOINT=path (SGR or SAF targets), CHECKPOINT_SGR=path
# CHECKPOINT_SAF=path (SGRAF targets). Results then go to $(RESULTS)/own_<dataset>_<model>_<protocol>.*
# with the paper's figures for orientation only (status "own", not ok/off), and no checkpoint is
# downloaded or held to the released layout.
CHECKPOINT ?=
CHECKPOINT_SGR ?=
CHECKPOINT_SAF ?=
RUN_PREFIX ?= $(if $(CHECKPOINT)$(CHECKPOINT_SGR)$(CHECKPOINT_SAF),own,daa)
# Your checkpoints are checked before anything is installed or downloaded.
$(foreach v,CHECKPOINT CHECKPOINT_SGR CHECKPOINT_SAF,$(foreach c,$($(v)),$(if $(wildcard $(c)),,\
	$(error $(v)=$(c): no such file))))
coco_files = $(DATA_ROOT)/coco_precomp/testall_caps.txt \
	$(DATA_ROOT)/coco_precomp/testall_ims.npy|$(DATA_ROOT)/coco_precomp/testall.h5 \
	$(DATA_ROOT)/vocab/coco_precomp_vocab.json
f30k_files = $(DATA_ROOT)/f30k_precomp/test_caps.txt \
	$(DATA_ROOT)/f30k_precomp/test_ims.npy|$(DATA_ROOT)/f30k_precomp/test.h5 \
	$(DATA_ROOT)/vocab/f30k_precomp_vocab.json
daa_checkpoint = $(MODELS_ROOT)/daa_$(1)_$(2).pth.tar
# $(call own_checkpoints,MODEL): the user's checkpoints for this model, empty when none were given
own_checkpoints = $(strip $(if $(filter sgraf,$(1)),$(CHECKPOINT_SGR) $(CHECKPOINT_SAF),$(CHECKPOINT)))
# $(call checkpoints_for,DATASET,MODEL): the user's checkpoints if given, else the released ones
checkpoints_for = $(or $(call own_checkpoints,$(2)),$(if $(filter sgraf,$(2)),\
	$(call daa_checkpoint,$(1),sgr) $(call daa_checkpoint,$(1),saf),$(call daa_checkpoint,$(1),$(2))))
# $(call checkpoint_downloads,DATASET,MODEL): prerequisites fetching the released checkpoints (none for your own)
checkpoint_downloads = $(if $(call own_checkpoints,$(2)),,\
	$(if $(filter sgraf,$(2)),download-daa-$(1)-sgr download-daa-$(1)-saf,download-daa-$(1)-$(2)))

# $(call each_spec,FILES,COMMANDS): for each spec of FILES, `found` is 1 when one of its files (a|b: either) exists.
each_spec = for spec in $(foreach s,$(1),'$(s)'); do found=0; for f in $${spec//|/ }; do [ -e "$$f" ] && found=1; \
	done; $(2); done

# $(call require_files,FILES,DOWNLOAD TARGETS): name every missing file (a|b: either will do), then fail.
define require_files
	@missing=0; $(call each_spec,$(1),\
	  if [ $$found = 0 ]; then echo "missing: $${spec//|/ (or) }" >&2; missing=1; fi); \
	if [ $$missing = 1 ]; then \
	  echo "fetch them with 'make $(2)', or put your copies at those paths (DATA_ROOT=$(DATA_ROOT), MODELS_ROOT=$(MODELS_ROOT))" >&2; \
	  exit 1; fi
endef

# $(call present,FILES): a shell test, true when every file (a|b: either) exists.
present = $(call each_spec,$(1),[ $$found = 1 ] || exit 1)

# $(call download_unless_present,GROUP,FILES): fetch what evaluation reads for GROUP unless its files are there
# (make download-<group> FORCE=1 verifies them again, against the manifest)
punkt_file = $(DATA_ROOT)/nltk_data/tokenizers/punkt_tab/english/collocations.tab$(if $(NLTK_DATA),|$(NLTK_DATA)/tokenizers/punkt_tab/english/collocations.tab)
define download_unless_present
	@if [ -z "$(FORCE)" ] && ( $(call present,$(2) $(punkt_file)) ); then \
	  echo "download-$(1): present under $(DATA_ROOT) (not fetched; FORCE=1 verifies it again)"; \
	else echo "$(DOWNLOAD) --group $(1) --for eval"; $(DOWNLOAD) --group $(1) --for eval; fi
endef

# $(call check_own,MODEL): SGRAF takes two checkpoints (CHECKPOINT_SGR and CHECKPOINT_SAF), the others one.
define check_own
	@if [ "$(filter sgraf,$(1))" ] && [ -n "$(CHECKPOINT)$(CHECKPOINT_SGR)$(CHECKPOINT_SAF)" ] && \
	  { [ -z "$(CHECKPOINT_SGR)" ] || [ -z "$(CHECKPOINT_SAF)" ] || [ -n "$(CHECKPOINT)" ]; }; then \
	  echo "SGRAF averages two models: give CHECKPOINT_SGR=path and CHECKPOINT_SAF=path (not CHECKPOINT)" >&2; exit 1; fi
	@if [ -z "$(filter sgraf,$(1))" ] && [ -n "$(CHECKPOINT_SGR)$(CHECKPOINT_SAF)" ]; then \
	  echo "this target evaluates one model: give CHECKPOINT=path" >&2; exit 1; fi
endef

# $(call reproduce,DATASET,MODEL,PROTOCOLS): one eval per protocol, results side by side.
define reproduce
	$(call check_own,$(2))
	$(call require_files,$(call checkpoints_for,$(1),$(2)) $($(1)_files),download-$(1) download-checkpoints)
	$(foreach p,$(3),$(EVAL) $(foreach c,$(call checkpoints_for,$(1),$(2)),--checkpoint $(c)) --protocol $(p) \
	  $(if $(call own_checkpoints,$(2)),--own-checkpoint) $(if $(filter coco-5k,$(p)),--eccv) \
	  --json $(RESULTS)/$(RUN_PREFIX)_$(1)_$(2)_$(p).json --csv $(RESULTS)/$(RUN_PREFIX)_$(1)_$(2)_$(p).csv && ) true
endef

reproduce-coco-sgr: install download-coco $(call checkpoint_downloads,coco,sgr) ## DAA SGR on COCO 1K (5 folds) and 5K vs the paper (or CHECKPOINT=)
	$(call reproduce,coco,sgr,coco-1k coco-5k)

reproduce-coco-saf: install download-coco $(call checkpoint_downloads,coco,saf) ## DAA SAF on COCO 1K (5 folds) and 5K vs the paper (or CHECKPOINT=)
	$(call reproduce,coco,saf,coco-1k coco-5k)

reproduce-coco-sgraf: install download-coco $(call checkpoint_downloads,coco,sgraf) ## DAA SGRAF (SGR, SAF averaged), COCO 1K and 5K (or CHECKPOINT_SGR/_SAF=)
	$(call reproduce,coco,sgraf,coco-1k coco-5k)

reproduce-f30k-sgr: install download-f30k $(call checkpoint_downloads,f30k,sgr) ## DAA SGR on Flickr30K 1K vs the paper (or CHECKPOINT=)
	$(call reproduce,f30k,sgr,f30k-1k)

reproduce-f30k-saf: install download-f30k $(call checkpoint_downloads,f30k,saf) ## DAA SAF on Flickr30K 1K vs the paper (or CHECKPOINT=)
	$(call reproduce,f30k,saf,f30k-1k)

reproduce-f30k-sgraf: install download-f30k $(call checkpoint_downloads,f30k,sgraf) ## DAA SGRAF (SGR, SAF averaged) on Flickr30K 1K (or CHECKPOINT_SGR/_SAF=)
	$(call reproduce,f30k,sgraf,f30k-1k)

reproduce_runs = $(foreach d,coco f30k,$(foreach m,sgr saf sgraf,reproduce-$(d)-$(m)))
reproduce-all: $(reproduce_runs) ## all six released-checkpoint runs above, then make report
	$(PY) -m bench report --results $(RESULTS)
.PHONY: $(reproduce_runs)

REPORT_FLAGS ?=
report: install ## gather $(RESULTS)/<run>.json into summary.csv and summary.md (REPORT_FLAGS=--plots redraws charts)
	$(PY) -m bench report --results $(RESULTS) $(REPORT_FLAGS)

# ---- issue 4: downloads: data under $(DATA_ROOT), checkpoints under $(MODELS_ROOT) ----
# Quick when everything is present and verified (size + mtime against the manifest; no re-hash).
# Evaluation targets fetch only what evaluation reads (COCO testall, Flickr30K test, vocabularies,
# checkpoints, annotations, punkt_tab); training targets fetch the train and dev splits.
# punkt_tab goes to $(DATA_ROOT)/nltk_data (where eval and train look) unless NLTK_DATA names a folder.
# DOWNLOAD_FLAGS passes options through, e.g. DOWNLOAD_FLAGS="--mirror URL" or "--offline".
DOWNLOAD_FLAGS ?=
DOWNLOAD := $(PY) -m bench download --data-root $(DATA_ROOT) --models-root $(MODELS_ROOT) $(DOWNLOAD_FLAGS)
.PHONY: bench-convert download-coco-train download-f30k-train download-train

download: install ## fetch, verify and prepare what evaluation reads (COCO, Flickr30K, checkpoints)
	$(DOWNLOAD) --group all --for eval

download-coco: install ## COCO testall features, vocabularies, COCO annotations, punkt_tab (skipped when present)
	$(call download_unless_present,coco,$(coco_files) $(DATA_ROOT)/coco_annotations/instances_val2014.json)

download-f30k: install ## Flickr30K test features, vocabularies, punkt_tab (skipped when present)
	$(call download_unless_present,f30k,$(f30k_files))

download-checkpoints: install ## the four DAA checkpoints and the SGRAF (no DAA) baselines
	$(DOWNLOAD) --group checkpoints

download-daa-%: install # one released DAA checkpoint, e.g. download-daa-f30k-saf
	$(DOWNLOAD) daa-$*

download-coco-train: install ## what training on COCO reads: train + dev splits (33 GB), vocabularies
	$(DOWNLOAD) --group coco --for train

download-f30k-train: install ## what training on Flickr30K reads: train + dev splits, vocabularies
	$(DOWNLOAD) --group f30k --for train

download-train: download-coco-train download-f30k-train ## both of the above

bench-convert: install ## peak memory of the streaming .npy -> HDF5 conversion on a generated 3 GiB file
	$(PY) -m bench.perf.convert_bench --gib 3 --json $(RESULTS)/perf/cpu-convert.json

# ---- issue 7: the paper's Tables 1 and 3: SGRAF baselines vs +DAA, side by side ----
# Each run is kept in $(TABLES_DIR)/table<N>/<protocol>-<sgraf|daa>-<model>.{json,csv}: running the
# target again only evaluates what is missing (delete a JSON to redo that run), then prints the table.
TABLES_DIR ?= $(RESULTS)/tables
.PHONY: reproduce-table1 reproduce-table3
t7_checkpoint = --checkpoint $(MODELS_ROOT)/$(1)_$(2)_$(3).pth.tar
# $(call t7_checkpoints,FAMILY,DATASET,MODEL): sgraf = the mean of the family's sgr and saf checkpoints
t7_checkpoints = $(if $(filter sgraf,$(3)),$(call t7_checkpoint,$(1),$(2),sgr) \
	$(call t7_checkpoint,$(1),$(2),saf),$(call t7_checkpoint,$(1),$(2),$(3)))
t7_annotations = $(DATA_ROOT)/coco_annotations
# $(call t7_run,TABLE,DATASET,PROTOCOL,FAMILY,MODEL): the rule for one run (COCO runs must give PMRP)
define t7_run
$(TABLES_DIR)/table$(1)/$(3)-$(4)-$(5).json:
	$$(EVAL) $(call t7_checkpoints,$(4),$(2),$(5)) --protocol $(3) \
	  $(if $(filter coco,$(2)),--annotations $(t7_annotations)) --json $$@ --csv $$(basename $$@).csv
t7_table$(1) += $(TABLES_DIR)/table$(1)/$(3)-$(4)-$(5).json
endef
$(foreach p,coco-1k coco-5k,$(foreach f,sgraf daa,$(foreach m,sgr saf sgraf,$(eval $(call t7_run,1,coco,$(p),$(f),$(m))))))
$(foreach f,sgraf daa,$(foreach m,sgr saf sgraf,$(eval $(call t7_run,3,f30k,f30k-1k,$(f),$(m)))))
t7_released = $(foreach f,sgraf daa,$(foreach m,sgr saf,$(MODELS_ROOT)/$(f)_$(1)_$(m).pth.tar))

reproduce-table1: install download-coco download-checkpoints ## paper Table 1: SGRAF baseline vs +DAA on COCO 1K/5K (R@1, ASP, PMRP)
	$(call require_files,$(call t7_released,coco) $(coco_files) $(t7_annotations)/instances_val2014.json,download-coco download-checkpoints)
	$(MAKE) --no-print-directory $(t7_table1)
	$(PY) -m bench table --table 1 --results $(TABLES_DIR)/table1 --markdown $(TABLES_DIR)/table1.md \
	  --gains-csv $(TABLES_DIR)/table1-gains.csv

reproduce-table3: install download-f30k download-checkpoints ## paper Table 3: SGRAF baseline vs +DAA on Flickr30K 1K (R@1, ASP)
	$(call require_files,$(call t7_released,f30k) $(f30k_files),download-f30k download-checkpoints)
	$(MAKE) --no-print-directory $(t7_table3)
	$(PY) -m bench table --table 3 --results $(TABLES_DIR)/table3 --markdown $(TABLES_DIR)/table3.md \
	  --gains-csv $(TABLES_DIR)/table3-gains.csv

# ---- issue 5: retrain SGR / SAF with the DAA loss (paper settings, docs/training.md); the demo ----
# Checkpoints, log.csv, steps.csv (and TensorBoard scalars when installed) land in
# $(call trained_dir,DATA,MODEL) = $(MODELS_ROOT)/trained/<data>_precomp_<model in lower case>/, the CLI's
# default folder (bench.training.settings.default_out_dir; a test checks that they agree).
# TRAIN_FLAGS passes options through, e.g. TRAIN_FLAGS="--resume" after an interruption, or
# TRAIN_FLAGS="--max-steps 3 --train-captions 500" for a smoke run. The paper's settings (epochs, lr,
# lr_update, daa_weight) come from bench.training.settings.PAPER_RUNS; COCO's 4 processes below are checked
# against it.
# `make eval-trained-<dataset>-<model>` then evaluates what training saved (closing the loop).
TRAIN_FLAGS ?=
trained_dir = $(MODELS_ROOT)/trained/$(1)_precomp_$(subst SGR,sgr,$(subst SAF,saf,$(2)))
trained_best = $(call trained_dir,$(1),$(2))/model_best.pth.tar
train_files = $(DATA_ROOT)/$(1)_precomp/train_caps.txt $(DATA_ROOT)/$(1)_precomp/dev_caps.txt \
	$(DATA_ROOT)/$(1)_precomp/train_ims.npy|$(DATA_ROOT)/$(1)_precomp/train.h5 \
	$(DATA_ROOT)/$(1)_precomp/dev_ims.npy|$(DATA_ROOT)/$(1)_precomp/dev.h5 $(DATA_ROOT)/vocab/$(1)_precomp_vocab.json
train_args = -m bench train --data-name $(1)_precomp --module-name $(2) --data-root $(DATA_ROOT) \
	--out-dir $(call trained_dir,$(1),$(2)) --device $(DEVICE) --precision $(PRECISION) $(TRAIN_FLAGS)

# $(call train_coco,MODULE,module): the paper used 4 processes (lr 0.00015 x 4); with N < 4 GPUs it runs N
# processes (lr 0.00015 x N, 128 x N captions per step), without a GPU one CPU process (very slow).
define train_coco
	$(call require_files,$(call train_files,coco),download-coco-train)
	@gpus=$$($(PY) -c "import torch; print(torch.cuda.device_count())"); \
	if [ "$$gpus" -ge 4 ]; then launch="$(PY) -m torch.distributed.run --nproc_per_node 4"; \
	elif [ "$$gpus" -ge 1 ]; then launch="$(PY) -m torch.distributed.run --nproc_per_node $$gpus"; \
	  echo "train-coco: $$gpus GPU(s), the paper used 4: running $$gpus processes (lr x $$gpus, batch 128 x $$gpus)" >&2; \
	else launch="$(PY)"; echo "train-coco: no GPU: one CPU process (the paper used 4 GPUs; expect days)" >&2; fi; \
	echo "$$launch $(call train_args,coco,$(1),$(2))"; $$launch $(call train_args,coco,$(1),$(2))
endef

train-coco-sgr: install download-coco-train ## train SGR on COCO with DAA, paper settings (torchrun x4 on 4 GPUs)
	$(call train_coco,SGR,sgr)

train-coco-saf: install download-coco-train ## train SAF on COCO with DAA, paper settings (torchrun x4 on 4 GPUs)
	$(call train_coco,SAF,saf)

train-f30k-sgr: install download-f30k-train ## train SGR on Flickr30K with DAA, paper settings (one process)
	$(call require_files,$(call train_files,f30k),download-f30k-train)
	$(PY) $(call train_args,f30k,SGR,sgr)

train-f30k-saf: install download-f30k-train ## train SAF on Flickr30K with DAA, paper settings (one process)
	$(call require_files,$(call train_files,f30k),download-f30k-train)
	$(PY) $(call train_args,f30k,SAF,saf)

# $(call eval_trained,DATASET,MODEL): the reproduce target on what train-<dataset>-<model> saved
eval_trained = $(MAKE) --no-print-directory reproduce-$(1)-$(2) RUN_PREFIX=trained $(if $(filter sgraf,$(2)),\
	CHECKPOINT_SGR=$(call trained_best,$(1),sgr) CHECKPOINT_SAF=$(call trained_best,$(1),saf),\
	CHECKPOINT=$(call trained_best,$(1),$(2)))

eval-trained-f30k-sgr: ## evaluate train-f30k-sgr's model: $(RESULTS)/trained_f30k_sgr_f30k-1k.*
	$(call eval_trained,f30k,sgr)

eval-trained-f30k-saf: ## evaluate train-f30k-saf's model: $(RESULTS)/trained_f30k_saf_f30k-1k.*
	$(call eval_trained,f30k,saf)

eval-trained-f30k-sgraf: ## evaluate both trained Flickr30K models as SGRAF
	$(call eval_trained,f30k,sgraf)

eval-trained-coco-sgr: ## evaluate train-coco-sgr's model on COCO 1K and 5K
	$(call eval_trained,coco,sgr)

eval-trained-coco-saf: ## evaluate train-coco-saf's model on COCO 1K and 5K
	$(call eval_trained,coco,saf)

eval-trained-coco-sgraf: ## evaluate both trained COCO models as SGRAF
	$(call eval_trained,coco,sgraf)

demo: install ## generate data, train SGR + SAF with DAA, evaluate them and SGRAF -> $(RESULTS)/demo/ (CPU, minutes)
	$(PY) -m bench demo --data-root $(DATA_ROOT)/demo --models-root $(MODELS_ROOT)/demo --results $(RESULTS)/demo

.PHONY: train-coco-sgr train-coco-saf train-f30k-sgr train-f30k-saf \
	$(foreach d,coco f30k,$(foreach m,sgr saf sgraf,eval-trained-$(d)-$(m)))

# ---- issue 6: performance (results/perf/*.csv; ratios measured in one process) ----
bench: install ## CPU benchmark: reference loop vs batched engine (fp32/bf16), a co-trained pair's cost, metrics, bootstrap, eval --scores memory, launches/syncs per training step, a batch-128 training step vs the original's
	$(PY) -m bench.perf.scoring_bench --device cpu --peak-size 1024 --out $(RESULTS)/perf
	$(PY) -m bench.perf.pair_bench --out $(RESULTS)/perf
	$(PY) -m bench.perf.metrics_bench --out $(RESULTS)/perf
	$(PY) -m bench.perf.bootstrap_bench --out $(RESULTS)/perf
	$(PY) -m bench.perf.semantics_bench --out $(RESULTS)/perf
	$(PY) -m bench.perf.scores_bench --out $(RESULTS)/perf
	$(PY) -m bench.perf.training_bench --out $(RESULTS)/perf
	$(PY) -m bench.perf.training_speed --out $(RESULTS)/perf
	$(PY) -m bench.perf.convert_bench --gib 3 --json $(RESULTS)/perf/cpu-convert.json

bench-gpu: install ## GPU benchmark: COCO-5K-sized scoring of SGR and SAF in fp32/tf32/bf16
	$(PY) -m bench.perf.scoring_bench --device cuda --coco5k --out $(RESULTS)/perf

# One prepared check of a CUDA machine (<= 8 min on one H100/H200, the whole check): goldens on the GPU in
# fp32/tf32/bf16, eval plain and under torchrun (NCCL), 20 DDP training steps, the golden training test in
# fp64, COCO-5K-sized scoring speed (docs/gpu-check.md). No install step: without $(VENV) (a GPU node) it
# runs from this tree with the system's python3 and its torch, and says so. NLTK and pytest, often missing
# there, come from the wheels `make gpu-wheels` put in .whl/ (only what that python lacks, nothing upgraded).
# Exit status: 0 pass, 1 a check failed, 2 no GPU (or no torch), 3 incomplete (a part did not run).
# the GPU node's Python, for which `make gpu-wheels` downloads
GPU_PYTHON_VERSION ?= 3.12
gpu-check: ## check a CUDA machine: goldens, eval/torchrun, DDP steps, COCO-5K speed -> results/perf/gpu-*.csv
	@py='$(PY)'; if [ '$(origin PY)' = file ] && [ ! -x "$$py" ]; then py=python3; \
	  if ! command -v python3 >/dev/null; then echo "gpu-check: no $(PY) and no python3 on PATH" >&2; exit 2; fi; \
	  echo "gpu-check: no $(PY): running with the system python3 ($$(command -v python3))" >&2; fi; \
	PYTHONPATH=.$${PYTHONPATH:+:$$PYTHONPATH} "$$py" -m bench.perf.gpu_check --out $(RESULTS)/perf

gpu-wheels: install ## download NLTK, defusedxml, pytest (and what they need) into .whl/ for a GPU node's Python 3.12
	$(PY) -m bench.perf.gpu_wheels --dest .whl --python-version $(GPU_PYTHON_VERSION)

# ---- issue 25: the SGRAF family (NCR, CREAM, SPS, L2RM, BiCro) on one yardstick (docs/family.md) ----
# reproduce-<method>-<dataset>-<noise> targets are generated from the registry (bench.family.releases).
FAMILY_DIR ?= $(RESULTS)/family
.PHONY: download-family reproduce-family
family_targets := $(shell PYTHONPATH=. $(PYTHON_BIN) -m bench.family.plan targets 2>/dev/null)
family_field = $(word $(2),$(subst :, ,$(1)))
# $(call family_run,TARGET,METHOD,DATASET,FILE,PROTOCOLS): evaluate one released file on its protocols
define family_run
$(1): install
	@test -f $(MODELS_ROOT)/family/$(2)/$(4) || { echo "$(1): $(MODELS_ROOT)/family/$(2)/$(4) not present; run make download-family" >&2; exit 1; }
	$(foreach p,$(subst +, ,$(5)),$$(EVAL) --checkpoint $(MODELS_ROOT)/family/$(2)/$(4) --protocol $(p) \
	  --run-id family-$(subst _model_best.pth.tar,,$(4))-$(p) \
	  --json $(FAMILY_DIR)/family-$(subst _model_best.pth.tar,,$(4))-$(p).json && ) true
.PHONY: $(1)
endef
family_arg = $(call family_field,$(t),$(1))
$(foreach t,$(family_targets),$(eval $(call family_run,$(call family_arg,1),$(call family_arg,2),$(call family_arg,3),$(call family_arg,4),$(call family_arg,5))))

download-family: install ## the family's releases: NCR's files, CC152K, the Drive folders (gdown); BiCro by hand
	$(DOWNLOAD) --family all --for eval

reproduce-family: install ## evaluate every family checkpoint present (one line per absent one), then report
	@mkdir -p $(FAMILY_DIR) && $(PY) -m bench.family.plan runs --models-root $(MODELS_ROOT) > $(FAMILY_DIR)/.plan.txt || exit 1; \
	while read -r checkpoint protocol run; do \
	  [ -n "$$checkpoint" ] || continue; \
	  $(EVAL) --checkpoint "$$checkpoint" --protocol "$$protocol" --run-id "$$run" --json "$(FAMILY_DIR)/$$run.json" || exit 1; \
	done < $(FAMILY_DIR)/.plan.txt; rm -f $(FAMILY_DIR)/.plan.txt
	$(PY) -m bench report --results $(FAMILY_DIR)
