<?php
header('Content-Type: text/plain');
echo "Initech portal on " . gethostname() . "\n";
