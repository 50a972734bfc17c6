"""The services :class:`engine.Engine` composes, each given its collaborators when it is made.

Bottom up (each uses only those above it, through their public methods):

- ``press``: the renderer and the converter, made on first use;
- ``definitions``: the workflow definitions applied to a case's data (normalise, evaluate,
  the names rules see, required fields, checks, a template's context);
- ``guard``: who sees which cases and documents and may take which steps;
- ``trail``: the audit trail and register log every unit of work appends to;
- ``listing``: what the store's indexes keep of a case (a collaborator of the store itself);
- ``units``: units of work that render and convert with no exclusive lock held;
- ``control``: document control (copies, recalls, voids, the register);
- ``personal``: reveals, reassignment and erasure of personal data;
- ``registers``: deadlines, the due list and the period registers (reports);
- ``issuing``: number → render → convert → finish → archive → register;
- ``cases``: reading cases as a user, and what each step allows them now;
- ``search``: finding a customer's file by name, ID or mobile number, or plate;
- ``timeline``: a case's life with the cases joined to it (a customer's), newest first;
- ``pipeline``: creating cases and firing transitions (with plans made ahead for a batch);
- ``imports``: one case per row of a spreadsheet, all in one unit of work, or none;
- ``timed``: the workflows' timed transitions;
- ``integrity``: verification and seals.
"""
