//! A fixed decode workload of the tiny built-in model for the freestanding
//! no_std check (filled in once the generator output is committed).
