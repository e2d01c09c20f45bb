"""Pure domain of the groups service: volunteers, group formation, routing, assessment,
duplicates, the theme classifier and key trends. No I/O: callers pass `now`, ids and data.

Modules, one concept each:

- `errors`: the domain exceptions (field + reason), kinds of the shared errors (HTTP 4xx,
  dead letters);
- `consultation`: the consultations as groups sees them (projection of intake's events);
- `actor`: who acts (coordinator, clerk, signed-in member) and what they may do in a group;
- `submission`: a submission as the groups see it (public text, theme, review state);
- `volunteers`: sign-up validation, contact normalisation, "same person" merge, life cycle;
- `group`: a working group, its lead and the role an actor has in it;
- `formation`: `GroupPolicy` and `place`, the rule that forms groups and seats volunteers;
- `routing`: submissions to groups, assessors to submissions, a leaver's open work;
- `assessment`: the review state machine, assessments, combined score and queue filters;
- `text`: Polish normalisation, lemmatisation (simplemma), stop words, bigrams;
- `classifier`: the offline theme classifier trained on `data/labelled_submissions.jsonl`;
- `duplicates`: possible-duplicate detection and the confirm/dismiss life cycle of a link;
- `trends`: the public key-trends report of one theme.
"""
