<?php
// The breakdown's first step: a PHP request with no framework at all.
echo 'pong';
