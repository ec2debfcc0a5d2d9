set -e
cd /tmp/wt_cv
export PYTHONPATH=/tmp/wt_cv/src ECGNET_CACHE=/tmp/wt_cv_cache
PY=/work/main/.venv/bin/python
nice -n 5 $PY -m ecgnet.cli train --manifest reports/own_data/cinc2021_samples.csv --from long_time --folds 5 \
  --runs-dir /tmp/cv_calib_runs --set name=cinc_default_cv --set training.threads=1 --no-progress
nice -n 5 $PY -m ecgnet.cli calibrate /tmp/cv_calib_runs/cinc_default_cv --site cinc --from-cv --no-progress
echo DONE
