<#
.SYNOPSIS
    Install the FleetPulse exporter on Windows and run it at boot, restarted on failure.

.DESCRIPTION
    1. makes a virtual environment in -InstallDir with Python 3.11+ and installs FleetPulse
       from -Source (a checkout, a wheel, or a package spec);
    2. writes -ConfigDir\exporter.yaml unless it exists (only the exporter: section);
    3. opens TCP -Port in Windows Firewall for -AllowFrom (skip with -NoFirewall);
    4. runs `fleetpulse exporter --listen 0.0.0.0:<Port> -c <config>` either
       - as a Windows service through NSSM (-Mode Nssm, needs nssm.exe on PATH or -Nssm):
         Python cannot answer the service control manager itself, so `sc.exe create`
         pointing at python.exe would fail with error 1053; NSSM is the wrapper that does, or
       - as a scheduled task at startup (-Mode Task, the default, nothing to install):
         restarted every minute up to 999 times when it exits;
    5. waits until http://127.0.0.1:<Port>/healthz answers.
    Run it again to upgrade (the venv is reused, the config kept). -Uninstall removes the
    service or task and the firewall rule, and keeps the config.

.EXAMPLE
    # from a checkout, in an elevated PowerShell:
    powershell -ExecutionPolicy Bypass -File deploy\windows\install-exporter.ps1 -Source .

.EXAMPLE
    .\install-exporter.ps1 -Source C:\dl\fleetpulse-0.1.0-py3-none-any.whl -Mode Nssm -AllowFrom 10.0.0.5
#>
[CmdletBinding()]
param(
    [string]$Source = (Resolve-Path (Join-Path $PSScriptRoot '..\..')).Path,
    [ValidateSet('Task', 'Nssm')]
    [string]$Mode = 'Task',
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'FleetPulse'),
    [string]$ConfigDir = (Join-Path $env:ProgramData 'FleetPulse'),
    [int]$Port = 9184,
    # the collector's address; 'Any' opens the port to every host
    [string[]]$AllowFrom = @('Any'),
    [string]$Python = '',
    [string]$Nssm = 'nssm.exe',
    # LocalService has no admin rights; container metrics need access to Docker's named pipe
    # (add the account to docker-users, or use 'SYSTEM')
    [string]$RunAs = 'NT AUTHORITY\LocalService',
    [switch]$NoFirewall,
    [switch]$Uninstall
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Name = 'FleetPulseExporter'

function Assert-Admin {
    $principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'run this script from an elevated PowerShell (Run as administrator)'
    }
}

function Find-Python {
    if ($Python) { return $Python }
    foreach ($candidate in @('py -3.13', 'py -3.12', 'py -3.11', 'python')) {
        $exe, $flag = $candidate -split ' ', 2
        if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
        $pyArgs = @(); if ($flag) { $pyArgs += $flag }
        $found = & $exe @pyArgs -c 'import sys; print(sys.executable if sys.version_info >= (3, 11) else "")' 2>$null
        if ($LASTEXITCODE -eq 0 -and $found) { return $found.Trim() }
    }
    throw 'Python 3.11 or newer is required: install it from python.org or `winget install Python.Python.3.12`'
}

function Remove-Exporter {
    if (Get-ScheduledTask -TaskName $Name -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $Name -ErrorAction SilentlyContinue
        Unregister-ScheduledTask -TaskName $Name -Confirm:$false
    }
    if (Get-Service -Name $Name -ErrorAction SilentlyContinue) {
        Stop-Service -Name $Name -Force -ErrorAction SilentlyContinue
        & sc.exe delete $Name | Out-Null
    }
    Get-NetFirewallRule -DisplayName $Name -ErrorAction SilentlyContinue | Remove-NetFirewallRule
}

function Install-Venv {
    $venvPython = Join-Path $InstallDir 'Scripts\python.exe'
    if (-not (Test-Path $venvPython)) {
        $basePython = Find-Python
        Write-Host "creating $InstallDir with $basePython"
        & $basePython -m venv $InstallDir
        if ($LASTEXITCODE -ne 0) { throw "python -m venv $InstallDir failed" }
    }
    & $venvPython -m pip install --disable-pip-version-check --quiet --upgrade $Source
    if ($LASTEXITCODE -ne 0) { throw "pip install $Source failed" }
    return $venvPython
}

function Write-Config {
    New-Item -ItemType Directory -Force -Path $ConfigDir | Out-Null
    $config = Join-Path $ConfigDir 'exporter.yaml'
    if (-not (Test-Path $config)) {
        @"
# FleetPulse exporter; the keys of the exporter: section (fleetpulse init writes a commented
# fleetpulse.yaml that lists them)
exporter:
  listen: 0.0.0.0:$Port
  interval: 15s
  # auth: {bearer_token_file: '$ConfigDir\exporter-token'}
  # tls: {cert_file: '$ConfigDir\exporter.crt', key_file: '$ConfigDir\exporter.key'}
"@ | Set-Content -Path $config -Encoding utf8
    }
    return $config
}

function Register-Exporter([string]$Exe, [string[]]$Arguments) {
    if ($Mode -eq 'Nssm') {
        if (-not (Get-Command $Nssm -ErrorAction SilentlyContinue)) {
            throw "nssm.exe not found: put it on PATH or pass -Nssm C:\path\nssm.exe, or use -Mode Task"
        }
        $log = Join-Path $ConfigDir 'exporter.log'
        & $Nssm install $Name $Exe @Arguments | Out-Null
        & $Nssm set $Name DisplayName 'FleetPulse exporter' | Out-Null
        & $Nssm set $Name Description "Host, container and network metrics on :$Port" | Out-Null
        & $Nssm set $Name Start SERVICE_AUTO_START | Out-Null
        & $Nssm set $Name ObjectName $RunAs | Out-Null
        & $Nssm set $Name AppStdout $log | Out-Null
        & $Nssm set $Name AppStderr $log | Out-Null
        & $Nssm set $Name AppRotateFiles 1 | Out-Null
        & $Nssm set $Name AppRotateBytes 10485760 | Out-Null
        & $Nssm set $Name AppExit Default Restart | Out-Null
        & $Nssm set $Name AppRestartDelay 5000 | Out-Null
        Start-Service -Name $Name
    }
    else {
        $action = New-ScheduledTaskAction -Execute "`"$Exe`"" -Argument ($Arguments -join ' ') -WorkingDirectory $ConfigDir
        $trigger = New-ScheduledTaskTrigger -AtStartup
        $principal = New-ScheduledTaskPrincipal -UserId $RunAs -LogonType ServiceAccount -RunLevel Limited
        $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
            -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
            -StartWhenAvailable -MultipleInstances IgnoreNew
        Register-ScheduledTask -TaskName $Name -Action $action -Trigger $trigger -Principal $principal `
            -Settings $settings -Description "FleetPulse exporter: host, container and network metrics on :$Port" | Out-Null
        Start-ScheduledTask -TaskName $Name
    }
}

function Wait-Healthy {
    $url = "http://127.0.0.1:$Port/healthz"
    $deadline = (Get-Date).AddSeconds(60)
    while ((Get-Date) -lt $deadline) {
        try {
            $answer = Invoke-WebRequest -Uri $url -UseBasicParsing -TimeoutSec 5
            if ($answer.StatusCode -eq 200) { Write-Host "exporter is up: http://${env:COMPUTERNAME}:$Port/metrics"; return }
        }
        catch { Start-Sleep -Seconds 2 }
    }
    throw "the exporter did not answer $url within 60 s; see the log in $ConfigDir or Task Scheduler's history"
}

Assert-Admin
Remove-Exporter # idempotent: a re-run replaces the old registration
if ($Uninstall) { Write-Host "removed $Name (config kept in $ConfigDir)"; return }

$venvPython = Install-Venv
$config = Write-Config
$exe = Join-Path $InstallDir 'Scripts\fleetpulse.exe'
$arguments = @('exporter', '--listen', "0.0.0.0:$Port", '-c', "`"$config`"")
if (-not $NoFirewall) {
    New-NetFirewallRule -DisplayName $Name -Direction Inbound -Protocol TCP -LocalPort $Port `
        -RemoteAddress $AllowFrom -Action Allow -Profile Any | Out-Null
}
Register-Exporter -Exe $exe -Arguments $arguments
Wait-Healthy
