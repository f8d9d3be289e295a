"""The preference reward model and best-of-n.

- `model.py`: the reward model (the BC policy's transformer + a scalar head, + its reader as the reading
  term), saving and loading;
- `train.py`: `webqa train rm`, pairwise logistic loss on comparisons, ties counting half;
- `pool.py`: pools of N sampled answers per question (the candidates file);
- `synthetic.py`: `webqa sample`, pools and synthetic comparisons from gold answers (+ answer variants);
- `best_of.py`: choosing the best-scored answer, and the unbiased best-of-k estimate (`webqa eval --pool`);
- `iterate.py`: `webqa train iterate`, expert iteration (best-of-n picks become demonstrations).
"""
